using Hull.Core;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

/// <summary>The one spec builder also makes the infra process's spec and exec sessions' processes.</summary>
public sealed class InfraAndExecSpecTests
{
    private static InfraSpecRequest Request(string rootfs, RuntimeHandler? handler = null) => new()
    {
        SandboxId = "pod1", PodName = "web", PodNamespace = "default", PodUid = "uid-1", Handler = handler ?? SpecFixtures.Handler(),
        RootfsPath = rootfs, NetNsPath = "/run/hull/ns/net/pod1", IpcNsPath = "/run/hull/ns/ipc/pod1", CgroupParent = "/kubepods/pod1",
        InfraBinary = "/usr/bin/catatonit",
    };

    [Fact]
    public async Task The_catatonit_infra_process_holds_a_new_pid_namespace_in_the_pods_other_namespaces()
    {
        using var dir = new TempDirectory();
        var spec = await new SpecBuilder(new SpecBuilderOptions(), SpecFixtures.Host()).BuildInfraAsync(Request(dir.Path));
        Assert.Equal([SpecBuilder.InfraBinaryPath, "-P"], spec.Process!.Args);
        Assert.Equal((65535u, 65535u), (spec.Process.User.Uid, spec.Process.User.Gid));
        Assert.True(spec.Process.NoNewPrivileges);
        Assert.Equal(-998, spec.Process.OomScoreAdj);
        Assert.Null(spec.Process.Capabilities!.Bounding);
        Assert.True(spec.Root!.Readonly);
        var namespaces = spec.Linux!.Namespaces!;
        Assert.Contains(namespaces, n => n is { Type: OciNamespace.Pid, Path: null });
        Assert.Contains(namespaces, n => n is { Type: OciNamespace.Network, Path: "/run/hull/ns/net/pod1" });
        Assert.Contains(namespaces, n => n is { Type: OciNamespace.Ipc, Path: "/run/hull/ns/ipc/pod1" });
        Assert.DoesNotContain(namespaces, n => n.Type == OciNamespace.Uts);
        Assert.Contains(spec.Mounts!, m => m is { Destination: SpecBuilder.InfraBinaryPath, Source: "/usr/bin/catatonit", Type: "bind" });
        Assert.Equal("/kubepods/pod1/pod1", spec.Linux.CgroupsPath);
        Assert.Equal("sandbox", spec.Annotations![SpecBuilder.ContainerTypeAnnotation]);
        Assert.Equal(SpecBuilder.DefaultMaskedPaths, spec.Linux.MaskedPaths);
    }

    [Fact]
    public async Task A_host_that_cannot_lower_oom_scores_clamps_the_infra_process_too()
    {
        using var dir = new TempDirectory();
        var host = SpecFixtures.Host() with { CanLowerOomScoreAdj = false, OomScoreAdj = -500 };
        var spec = await new SpecBuilder(new SpecBuilderOptions(), host).BuildInfraAsync(Request(dir.Path));
        Assert.Equal(-500, spec.Process!.OomScoreAdj);
    }

    [Fact]
    public async Task The_pause_image_process_runs_its_entrypoint_as_its_user_unless_the_pod_names_one()
    {
        using var dir = new TempDirectory();
        string rootfs = SpecFixtures.Rootfs(dir);
        var image = (Reference: "registry.k8s.io/pause:3.9", Config: new ImageConfig { Entrypoint = ["/pause"], User = "app", Env = ["A=1"] });
        var builder = new SpecBuilder(new SpecBuilderOptions(), SpecFixtures.Host());
        var spec = await builder.BuildInfraAsync(Request(rootfs) with { InfraBinary = null, Image = image });
        Assert.Equal(["/pause"], spec.Process!.Args);
        Assert.Equal(1000u, spec.Process.User.Uid);
        Assert.Equal(ProcessConfig.DefaultPathEnv, spec.Process.Env![0]);
        Assert.DoesNotContain(spec.Mounts!, m => m.Destination == SpecBuilder.InfraBinaryPath);

        var asPod = await builder.BuildInfraAsync(Request(rootfs) with { InfraBinary = null, Image = image, RunAsUser = 42 });
        Assert.Equal(42u, asPod.Process!.User.Uid);

        var e = await Assert.ThrowsAsync<HullException>(() => builder.BuildInfraAsync(Request(rootfs) with
        {
            InfraBinary = null, Image = (image.Reference, new ImageConfig()),
        }));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("pause:3.9", e.Message);
    }

    [Fact]
    public async Task The_systemd_driver_places_the_infra_process_in_a_scope_of_the_pod_slice()
    {
        using var dir = new TempDirectory();
        var spec = await new SpecBuilder(new SpecBuilderOptions(), SpecFixtures.Host())
            .BuildInfraAsync(Request(dir.Path, SpecFixtures.Handler(CgroupDriver.Systemd)) with { CgroupParent = "kubepods-pod1.slice" });
        Assert.Equal("kubepods-pod1.slice:hull:pod1", spec.Linux!.CgroupsPath);
    }

    [Fact]
    public void An_exec_process_is_the_containers_process_running_the_command()
    {
        var container = new OciProcess
        {
            User = new OciUser { Uid = 1000, Gid = 1000 }, Args = ["/app"], Env = ["A=1"], Cwd = "/srv", Terminal = true,
            ConsoleSize = new OciConsoleSize(24, 80), Capabilities = new OciCapabilities { Bounding = ["CAP_CHOWN"] },
        };
        var plain = SpecBuilder.ExecProcess(container, ["ls", "-l"], tty: false);
        Assert.Equal(["ls", "-l"], plain.Args);
        Assert.False(plain.Terminal);
        Assert.Null(plain.ConsoleSize);
        Assert.Equal((1000u, "/srv"), (plain.User.Uid, plain.Cwd));
        Assert.Equal(["A=1"], plain.Env);
        Assert.Equal(["CAP_CHOWN"], plain.Capabilities!.Bounding);

        var tty = SpecBuilder.ExecProcess(container, ["sh"], tty: true, new OciConsoleSize(50, 120));
        Assert.True(tty.Terminal);
        Assert.Equal(new OciConsoleSize(50, 120), tty.ConsoleSize);
    }
}
