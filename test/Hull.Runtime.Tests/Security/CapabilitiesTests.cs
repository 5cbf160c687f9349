using Hull.Core;
using Hull.Runtime.Security;

namespace Hull.Runtime.Tests.Security;

public class CapabilitiesTests
{
    private static readonly string[] All = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"];

    [Fact]
    public void The_default_set_is_containerds_fourteen()
    {
        Assert.Equal(14, Capabilities.Default.Count);
        Assert.Equal(
            ["CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD",
             "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"],
            Capabilities.Default.Order(StringComparer.Ordinal));
    }

    public static TheoryData<string, string[], string[], string[]> Cases => new()
    {
        // case, add, drop, expected (as a set)
        { "add one", ["NET_ADMIN"], [], [.. Capabilities.Default, "CAP_NET_ADMIN"] },
        { "drop one", [], ["CHOWN"], [.. Capabilities.Default.Where(c => c != "CAP_CHOWN")] },
        { "lower case and CAP_ prefix", ["net_admin", "CAP_SYS_TIME"], ["cap_kill"], [.. Capabilities.Default.Where(c => c != "CAP_KILL"), "CAP_NET_ADMIN", "CAP_SYS_TIME"] },
        { "add ALL", ["ALL"], [], All },
        { "add ALL drop one", ["ALL"], ["CHOWN"], ["CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"] },
        { "drop ALL", [], ["ALL"], [] },
        { "drop ALL add one", ["KILL"], ["all"], ["CAP_KILL"] },
        { "add and drop the same: drop wins", ["NET_ADMIN"], ["NET_ADMIN"], Capabilities.Default.ToArray() },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Add_and_drop_follow_containerd(string @case, string[] add, string[] drop, string[] expected)
    {
        var caps = Capabilities.Compute(add, drop, All);
        Assert.True(expected.Order(StringComparer.Ordinal).SequenceEqual(caps.Order(StringComparer.Ordinal)), $"{@case}: {string.Join(',', caps)}");
        Assert.Equal(caps.Count, caps.Distinct().Count());
    }

    [Fact]
    public void An_unknown_capability_is_InvalidArgument()
    {
        var e = Assert.Throws<HullException>(() => Capabilities.Compute(["NET_WIZARD"], [], All));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("NET_WIZARD", e.Message);
    }

    [Fact]
    public void Current_reads_the_effective_set_of_this_process()
    {
        string file = Path.GetTempFileName();
        try
        {
            // Everything up to CAP_CHECKPOINT_RESTORE except CAP_SYS_RESOURCE (24), as on a sandboxed root.
            File.WriteAllText(file, "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n");
            var caps = Capabilities.Current(file);
            Assert.Equal(40, caps.Count);
            Assert.DoesNotContain("CAP_SYS_RESOURCE", caps);
            Assert.Contains("CAP_CHECKPOINT_RESTORE", caps);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Known_to_kernel_follows_cap_last_cap()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "37\n");
            var caps = Capabilities.KnownToKernel(file);
            Assert.Equal(38, caps.Count);
            Assert.Equal("CAP_AUDIT_READ", caps[^1]);
        }
        finally { File.Delete(file); }
        Assert.Contains("CAP_CHOWN", Capabilities.KnownToKernel());
    }

    [Fact]
    public void The_name_table_matches_capability_numbers()
    {
        Assert.Equal("CAP_SYS_ADMIN", Capabilities.KernelNames[21]);
        Assert.Equal("CAP_SYS_RESOURCE", Capabilities.KernelNames[24]);
        Assert.Equal("CAP_CHECKPOINT_RESTORE", Capabilities.KernelNames[40]);
    }
}
