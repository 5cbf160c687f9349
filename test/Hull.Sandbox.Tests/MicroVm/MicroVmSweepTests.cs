using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.MicroVm;

/// <summary>The startup sweep of microVM pods the store does not know.</summary>
public sealed class MicroVmSweepTests
{
    private const string Known = "aaaa000000000000000000000000000000000000000000000000000000000001";
    private const string Orphan = "bbbb000000000000000000000000000000000000000000000000000000000002";
    private const string RuncPod = "cccc000000000000000000000000000000000000000000000000000000000003";

    [Fact]
    public async Task The_share_of_an_unknown_microVM_pod_goes_and_everything_else_stays()
    {
        using var temp = new TempDirectory();
        var sandboxes = Path.Combine(temp.Path, "sandboxes");
        foreach (var id in new[] { Known, Orphan })
        {
            Directory.CreateDirectory(Path.Combine(sandboxes, id, "vm"));
            Directory.CreateDirectory(Path.Combine(sandboxes, id, "share", "c1", "rootfs"));
            // A pid file of a process that is not this VM's qemu (our own pid): never killed.
            File.WriteAllText(Path.Combine(sandboxes, id, "vm", "qemu.pid"), Environment.ProcessId.ToString());
        }
        Directory.CreateDirectory(Path.Combine(sandboxes, RuncPod));
        var controller = new MicroVmSandboxController(new MicroVmOptions { StateDirectory = temp.Path }, new NamespacePinner(temp.Path),
            _ => throw new InvalidOperationException("no CNI in this test"));

        var swept = await controller.SweepOrphansAsync(new HashSet<string> { Known }, CancellationToken.None);

        Assert.Equal([Orphan], swept);
        Assert.False(Directory.Exists(Path.Combine(sandboxes, Orphan, "share")));
        Assert.True(Directory.Exists(Path.Combine(sandboxes, Known, "share", "c1", "rootfs")));
        Assert.True(Directory.Exists(Path.Combine(sandboxes, RuncPod)));
    }
}
