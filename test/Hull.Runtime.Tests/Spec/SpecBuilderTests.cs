using Hull.Core;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class SpecBuilderTests
{
    private static Task<OciSpec> Build(ContainerSpecRequest request, SpecBuilderOptions? options = null, HostInfo? host = null) =>
        SpecFixtures.Builder(options, host).BuildAsync(request);

    [Fact]
    public async Task A_plain_container_gets_containerds_defaults()
    {
        using var dir = new TempDirectory();
        var image = new ImageConfig { Entrypoint = ["/entry"], Cmd = ["serve"], Env = ["APP=1"], WorkingDir = "/srv", User = "app" };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), new ContainerConfig { Name = "app", Tty = true }, image: image));

        var p = spec.Process!;
        Assert.Equal(["/entry", "serve"], p.Args);
        Assert.Equal("/srv", p.Cwd);
        Assert.True(p.Terminal);
        Assert.Equal((1000u, 1000u), (p.User.Uid, p.User.Gid));
        Assert.Equal([10u, 50u], p.User.AdditionalGids);
        Assert.Equal([ProcessConfig.DefaultPathEnv, "HOSTNAME=web-0", "APP=1", "HOME=/home/app"], p.Env);
        Assert.Equal(Capabilities.Default, p.Capabilities!.Bounding);
        Assert.Null(p.Capabilities.Inheritable);
        Assert.Null(p.Capabilities.Ambient);
        Assert.False(p.NoNewPrivileges);
        Assert.Null(p.ApparmorProfile);
        Assert.Null(p.OomScoreAdj);
        Assert.Null(p.Rlimits);

        var linux = spec.Linux!;
        Assert.Null(linux.Seccomp); // containerd: no profile named means unconfined
        Assert.Equal(SpecBuilder.DefaultMaskedPaths, linux.MaskedPaths);
        Assert.Equal(SpecBuilder.DefaultReadonlyPaths, linux.ReadonlyPaths);
        Assert.Equal("/hull/pod1/c0ffee", linux.CgroupsPath);
        Assert.Equal([new OciDeviceCgroup { Allow = false, Access = "rwm" }], linux.Resources!.Devices);
        Assert.Null(spec.Hostname);
        Assert.Equal(Path.Join(dir.Path, "rootfs"), spec.Root!.Path);
        Assert.Null(spec.Root.Readonly);
        Assert.Equal("container", spec.Annotations![SpecBuilder.ContainerTypeAnnotation]);
        Assert.Equal("pod1", spec.Annotations[SpecBuilder.SandboxIdAnnotation]);
        Assert.Equal("docker.io/library/app:1", spec.Annotations[SpecBuilder.ImageNameAnnotation]);
        Assert.Equal("web", spec.Annotations[SpecBuilder.SandboxNameAnnotation]);
    }

    [Fact]
    public async Task Pod_namespaces_are_joined_by_path_and_the_container_gets_its_own_mount_namespace()
    {
        using var dir = new TempDirectory();
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir)));
        Assert.Equal(
            [("pid", "/proc/4242/ns/pid"), ("ipc", "/run/hull/ns/ipc/pod1"), ("uts", "/run/hull/ns/uts/pod1"), ("mount", null), ("network", "/run/hull/ns/net/pod1")],
            spec.Linux!.Namespaces!.Select(n => (n.Type, n.Path)));
    }

    public static TheoryData<PidNamespaceMode, string?, string?, bool> PidCases => new()
    {
        // mode, target path, expected pid namespace path (null: new), expected present
        { PidNamespaceMode.Container, null, null, true },
        { PidNamespaceMode.Pod, null, "/proc/4242/ns/pid", true },
        { PidNamespaceMode.Node, null, null, false },
        { PidNamespaceMode.Target, "/proc/77/ns/pid", "/proc/77/ns/pid", true },
    };

    [Theory]
    [MemberData(nameof(PidCases))]
    public async Task Pid_namespace_by_mode(PidNamespaceMode mode, string? target, string? path, bool present)
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig { Name = "app", Command = ["/a"], Security = new ContainerSecurity { PidMode = mode, TargetPidNamespacePath = target } };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));
        var pid = spec.Linux!.Namespaces!.SingleOrDefault(n => n.Type == "pid");
        Assert.Equal(present, pid is not null);
        if (present) Assert.Equal(path, pid!.Path);
    }

    [Fact]
    public async Task A_shared_pid_pod_without_an_infra_namespace_is_FailedPrecondition()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with { SharedPidNamespacePath = null };
        var e = await Assert.ThrowsAsync<HullException>(() => Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox)));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
    }

    [Fact]
    public async Task Host_namespaces_are_left_out_and_a_new_uts_namespace_gets_the_hostname()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with { Network = NamespaceRef.Host, Ipc = NamespaceRef.Host, Uts = NamespaceRef.New };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox));
        var types = spec.Linux!.Namespaces!.Select(n => n.Type).ToList();
        Assert.DoesNotContain("network", types);
        Assert.DoesNotContain("ipc", types);
        Assert.Contains(spec.Linux.Namespaces!, n => n is { Type: "uts", Path: null });
        Assert.Equal("web-0", spec.Hostname);
    }

    [Fact]
    public async Task A_cgroup_namespace_on_cgroup_v2_unless_privileged()
    {
        using var dir = new TempDirectory();
        var v2 = SpecFixtures.Host(cgroupV2: true);
        Assert.Contains((await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir)), host: v2)).Linux!.Namespaces!, n => n.Type == "cgroup");
        Assert.DoesNotContain((await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir)))).Linux!.Namespaces!, n => n.Type == "cgroup");
        var privileged = PrivilegedRequest(dir);
        Assert.DoesNotContain((await Build(privileged, host: v2)).Linux!.Namespaces!, n => n.Type == "cgroup");
    }

    [Fact]
    public async Task A_pod_user_namespace_is_joined_with_its_mappings()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with
        {
            UserNamespace = new UserNamespace { Path = "/run/hull/ns/user/pod1", UidMappings = [new(0, 100000, 65536)], GidMappings = [new(0, 200000, 65536)] },
        };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox));
        Assert.Contains(spec.Linux!.Namespaces!, n => n is { Type: "user", Path: "/run/hull/ns/user/pod1" });
        Assert.Equal([new OciIdMapping(0, 100000, 65536)], spec.Linux.UidMappings);
        Assert.Equal([new OciIdMapping(0, 200000, 65536)], spec.Linux.GidMappings);
    }

    private static ContainerSpecRequest PrivilegedRequest(TempDirectory dir) =>
        SpecFixtures.Request(SpecFixtures.Rootfs(dir),
            new ContainerConfig
            {
                Name = "priv", Command = ["/p"],
                Security = new ContainerSecurity { Privileged = true, Seccomp = SecurityProfile.RuntimeDefault, Capabilities = new CapabilityChanges { Drop = ["ALL"] } },
            },
            SpecFixtures.Request("/").Sandbox with { Privileged = true });

    [Fact]
    public async Task Privileged_gets_every_capability_host_devices_no_masking_and_no_seccomp()
    {
        using var dir = new TempDirectory();
        var host = SpecFixtures.Host() with { AllCapabilities = Capabilities.FromMask(0x1fffeffffff), AppArmor = new AppArmorHost(true, new HashSet<string> { "hull-default" }) };
        var spec = await Build(PrivilegedRequest(dir), host: host);
        Assert.Equal(host.AllCapabilities, spec.Process!.Capabilities!.Bounding);
        Assert.DoesNotContain("CAP_SYS_RESOURCE", spec.Process.Capabilities.Effective!);
        Assert.Null(spec.Linux!.Seccomp);
        Assert.Null(spec.Process.ApparmorProfile);
        Assert.Null(spec.Linux.MaskedPaths);
        Assert.Null(spec.Linux.ReadonlyPaths);
        Assert.Contains(spec.Linux.Devices!, d => d.Path == "/dev/null");
        Assert.Equal([new OciDeviceCgroup { Allow = true, Access = "rwm" }], spec.Linux.Resources!.Devices);
        Assert.Contains("rw", spec.Mounts!.Single(m => m.Type == "sysfs").Options!);

        var noDevices = await Build(PrivilegedRequest(dir) with { Handler = SpecFixtures.Handler() with { PrivilegedWithoutHostDevices = true } }, host: host);
        Assert.Null(noDevices.Linux!.Devices);
        Assert.Equal([new OciDeviceCgroup { Allow = false, Access = "rwm" }], noDevices.Linux.Resources!.Devices);

        var allAllowed = await Build(PrivilegedRequest(dir) with
        {
            Handler = SpecFixtures.Handler() with { PrivilegedWithoutHostDevices = true, PrivilegedWithoutHostDevicesAllDevicesAllowed = true },
        }, host: host);
        Assert.Null(allAllowed.Linux!.Devices);
        Assert.Equal([new OciDeviceCgroup { Allow = true, Access = "rwm" }], allAllowed.Linux.Resources!.Devices);
    }

    [Fact]
    public async Task A_privileged_container_in_an_unprivileged_pod_is_InvalidArgument()
    {
        using var dir = new TempDirectory();
        var request = PrivilegedRequest(dir) with { Sandbox = SpecFixtures.Request("/").Sandbox };
        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<HullException>(() => Build(request))).Kind);
    }

    [Fact]
    public async Task Seccomp_RuntimeDefault_follows_the_capabilities_after_add_and_drop()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"],
            Security = new ContainerSecurity { Seccomp = SecurityProfile.RuntimeDefault, Capabilities = new CapabilityChanges { Add = ["SYS_ADMIN"], Drop = ["NET_RAW"] } },
        };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));
        Assert.Contains("CAP_SYS_ADMIN", spec.Process!.Capabilities!.Bounding!);
        Assert.DoesNotContain("CAP_NET_RAW", spec.Process.Capabilities.Permitted!);
        Assert.Contains(spec.Linux!.Seccomp!.Syscalls!, s => s.Names.Contains("mount") && s.Args is null);

        var viaDefault = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir)), new SpecBuilderOptions { DefaultSeccompProfile = SecurityProfile.RuntimeDefault });
        Assert.NotNull(viaDefault.Linux!.Seccomp);
    }

    [Fact]
    public async Task Masked_and_readonly_path_overrides_replace_the_defaults()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig { Name = "app", Command = ["/a"], Security = new ContainerSecurity { MaskedPaths = ["/proc/x"], ReadonlyPaths = [] } };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));
        Assert.Equal(["/proc/x"], spec.Linux!.MaskedPaths);
        Assert.Null(spec.Linux.ReadonlyPaths);
    }

    [Fact]
    public async Task Security_flags_map_to_the_spec()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig { Name = "app", Command = ["/a"], Security = new ContainerSecurity { NoNewPrivs = true, ReadonlyRootfs = true } };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));
        Assert.True(spec.Process!.NoNewPrivileges);
        Assert.True(spec.Root!.Readonly);
    }

    [Theory]
    [InlineData(-998, false, 0, -998)]
    [InlineData(-998, true, 0, 0)]
    [InlineData(500, true, 0, 500)]
    [InlineData(-998, true, -999, -998)]
    public async Task Oom_score_adj_with_and_without_the_restriction(long requested, bool restrict, int daemon, int expected)
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig { Name = "app", Command = ["/a"], Resources = new LinuxResources { OomScoreAdj = requested } };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container),
            new SpecBuilderOptions { RestrictOomScoreAdj = restrict }, SpecFixtures.Host() with { OomScoreAdj = daemon });
        Assert.Equal(expected, spec.Process!.OomScoreAdj);
    }

    [Fact]
    public async Task Resources_devices_and_sysctls_reach_the_spec()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"],
            Resources = new LinuxResources { CpuShares = 256, MemoryLimitInBytes = 1 << 26 },
            Devices = [new ContainerDevice("/dev/xnull", "/dev/null", "rw")],
        };
        var sandbox = SpecFixtures.Request("/").Sandbox with { Sysctls = new Dictionary<string, string> { ["net/ipv4/ip_forward"] = "1" }, CgroupParent = "/kubepods/besteffort/poduid" };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container, sandbox));
        var linux = spec.Linux!;
        Assert.Equal(256UL, linux.Resources!.Cpu!.Shares);
        Assert.Equal(1L << 26, linux.Resources.Memory!.Swap);
        Assert.Contains(linux.Devices!, d => d is { Path: "/dev/xnull", Major: 1, Minor: 3 });
        Assert.Contains(linux.Resources.Devices!, r => r is { Allow: true, Major: 1, Minor: 3, Access: "rw" });
        Assert.Equal("1", linux.Sysctl!["net.ipv4.ip_forward"]);
        Assert.Equal("/kubepods/besteffort/poduid/c0ffee", linux.CgroupsPath);

        // The pod's runtime handler decides the driver.
        var systemd = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox with { CgroupParent = "kubepods-besteffort-poduid.slice" },
            handler: SpecFixtures.Handler(CgroupDriver.Systemd)));
        Assert.Equal("kubepods-besteffort-poduid.slice:hull:c0ffee", systemd.Linux!.CgroupsPath);
    }

    [Fact]
    public async Task A_negative_memory_limit_is_InvalidArgument()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig { Name = "app", Command = ["/a"], Resources = new LinuxResources { MemoryLimitInBytes = -5 } };
        var error = await Assert.ThrowsAsync<Hull.Core.HullException>(() => Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container)));
        Assert.Equal(Hull.Core.ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("memory limit -5", error.Message);
    }

    [Fact]
    public async Task A_host_network_pod_may_not_set_net_sysctls()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with { Network = NamespaceRef.Host, Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "1024" } };
        var e = await Assert.ThrowsAsync<HullException>(() => Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public async Task Container_annotations_are_passed_but_cannot_override_the_CRI_ones()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"],
            Annotations = new Dictionary<string, string> { ["example.com/x"] = "y", [SpecBuilder.SandboxIdAnnotation] = "forged" },
        };
        var spec = await Build(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));
        Assert.Equal("y", spec.Annotations!["example.com/x"]);
        Assert.Equal("pod1", spec.Annotations[SpecBuilder.SandboxIdAnnotation]);
    }
}
