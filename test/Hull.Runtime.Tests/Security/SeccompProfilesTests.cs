using Hull.Core;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;
using Hull.Runtime.Tests.Spec;

namespace Hull.Runtime.Tests.Security;

public class SeccompProfilesTests
{
    private static Task<OciSeccomp?> Resolve(SecurityProfile profile, bool privileged = false, bool enabled = true) =>
        SeccompProfiles.ResolveAsync(profile, privileged, enabled, Capabilities.Default, new KernelVersion(6, 1), "amd64", CancellationToken.None);

    [Fact]
    public async Task Unconfined_and_privileged_get_no_filter()
    {
        Assert.Null(await Resolve(SecurityProfile.Unconfined));
        Assert.Null(await Resolve(SecurityProfile.RuntimeDefault, privileged: true));
        Assert.Null(await Resolve(SecurityProfile.Localhost("/nonexistent.json"), privileged: true));
    }

    [Fact]
    public async Task RuntimeDefault_is_the_default_profile()
    {
        var p = await Resolve(SecurityProfile.RuntimeDefault);
        Assert.Equal("SCMP_ACT_ERRNO", p!.DefaultAction);
        Assert.Contains(p.Syscalls!, s => s.Names.Contains("read"));
    }

    [Fact]
    public async Task Localhost_reads_an_OCI_profile_file()
    {
        using var dir = new TempDirectory();
        string path = dir.Write("profile.json", """
            {
              "defaultAction": "SCMP_ACT_LOG",
              "architectures": ["SCMP_ARCH_X86_64"],
              "syscalls": [
                { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [ { "index": 0, "value": 8, "op": "SCMP_CMP_EQ" } ] }
              ]
            }
            """);
        var p = await Resolve(SecurityProfile.Localhost(path));
        Assert.Equal("SCMP_ACT_LOG", p!.DefaultAction);
        Assert.Equal(13u, p.Syscalls![0].ErrnoRet);
        Assert.Equal(8UL, p.Syscalls[1].Args![0].Value);
        // The deprecated "localhost/" form names the same file.
        Assert.Equal("SCMP_ACT_LOG", (await Resolve(SecurityProfile.Localhost("localhost/" + path)))!.DefaultAction);
    }

    [Fact]
    public async Task A_Docker_profile_with_archMap_gets_architectures()
    {
        using var dir = new TempDirectory();
        string path = dir.Write("docker.json", """
            {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
             "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],
             "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","comment":"ignored","includes":{}}]}
            """);
        var p = await Resolve(SecurityProfile.Localhost(path));
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], p!.Architectures);
        Assert.Equal(1u, p.DefaultErrnoRet);
    }

    [Fact]
    public async Task A_missing_profile_file_is_InvalidArgument_naming_the_path()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SecurityProfile.Localhost("/var/lib/kubelet/seccomp/missing.json")));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"/var/lib/kubelet/seccomp/missing.json\"", e.Message);
    }

    [Theory]
    [InlineData("profiles/audit.json", "not absolute")]
    [InlineData("", "needs a profile path")]
    public async Task A_relative_or_empty_path_is_InvalidArgument(string reference, string message)
    {
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SecurityProfile.Localhost(reference)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("""{"syscalls":[]}""")]
    [InlineData("[]")]
    public async Task An_invalid_profile_is_InvalidArgument(string content)
    {
        using var dir = new TempDirectory();
        string path = dir.Write("bad.json", content);
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SecurityProfile.Localhost(path)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task Without_seccomp_in_the_kernel_only_Unconfined_is_possible()
    {
        Assert.Null(await Resolve(SecurityProfile.Unconfined, enabled: false));
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SecurityProfile.RuntimeDefault, enabled: false));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
    }

    [Fact]
    public async Task A_localhost_reference_on_another_kind_is_InvalidArgument()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(new SecurityProfile(SecurityProfileKind.RuntimeDefault, "/x.json")));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }
}
