using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public sealed class SpecAdjustmentTests
{
    private static readonly OciSpec Base = new()
    {
        Process = new OciProcess { Args = ["sh"], Env = ["PATH=/bin", "KEEP=1", "DROP=1"], Rlimits = [new OciRlimit("RLIMIT_NOFILE", 10, 10)] },
        Mounts = [new OciMount { Destination = "/proc", Type = "proc", Source = "proc" }, new OciMount { Destination = "/data", Type = "bind", Source = "/old" }],
        Annotations = new Dictionary<string, string> { ["a"] = "1", ["gone"] = "x" },
        Linux = new OciLinux
        {
            Namespaces = [new OciNamespace { Type = "network", Path = "/run/netns/p" }, new OciNamespace { Type = "ipc" }, new OciNamespace { Type = "mount" }],
            Resources = new OciResources { Devices = [new OciDeviceCgroup { Allow = false, Access = "rwm" }] },
        },
    };

    private static OciSpec Apply(ContainerAdjustment a, HostInfo? host = null) => SpecAdjuster.Apply(Base, a, "c1", host ?? new HostInfo());

    [Fact]
    public void Annotations_env_and_args_are_set_replaced_and_removed()
    {
        var spec = Apply(new ContainerAdjustment
        {
            Annotations = new Dictionary<string, string> { ["b"] = "2", ["a"] = "3" },
            RemovedAnnotations = ["gone"],
            Env = [new EnvVar("KEEP", "2"), new EnvVar("NEW", "x")],
            RemovedEnv = ["DROP"],
            Args = ["echo", "hi"],
        });
        Assert.Equal(new Dictionary<string, string> { ["a"] = "3", ["b"] = "2" }, spec.Annotations);
        Assert.Equal(["PATH=/bin", "KEEP=2", "NEW=x"], spec.Process!.Env);
        Assert.Equal(["echo", "hi"], spec.Process.Args);
    }

    [Fact]
    public void An_added_device_gets_its_device_cgroup_rule()
    {
        var spec = Apply(new ContainerAdjustment { Devices = [new OciDevice { Path = "/dev/xb", Type = "b", Major = 7, Minor = 1 }] });
        Assert.Contains(spec.Linux!.Devices!, d => d.Path == "/dev/xb");
        Assert.Equal(new OciDeviceCgroup { Allow = true, Type = "b", Major = 7, Minor = 1, Access = "rwm" }, spec.Linux.Resources!.Devices![^1]);
        Assert.Throws<HullException>(() => Apply(new ContainerAdjustment { Devices = [new OciDevice { Path = "dev/rel", Type = "c" }] }));
    }

    [Fact]
    public void Mounts_replace_by_destination_and_are_ordered_parents_first()
    {
        var spec = Apply(new ContainerAdjustment
        {
            Mounts = [new OciMount { Destination = "/data/sub", Type = "bind", Source = "/s", Options = ["rbind"] }, new OciMount { Destination = "/data", Type = "bind", Source = "/new" }],
            RemovedMounts = ["/proc"],
        });
        Assert.Equal(["/data", "/data/sub"], spec.Mounts!.Select(m => m.Destination));
        Assert.Equal("/new", spec.Mounts![0].Source);
    }

    [Fact]
    public void Resources_memory_cpu_pids_hugepages_and_unified_are_set()
    {
        var spec = Apply(new ContainerAdjustment
        {
            Resources = new ResourceAdjustment
            {
                MemoryLimit = 1 << 20, CpuShares = 256, CpusetCpus = "0-1", PidsLimit = 100,
                HugepageLimits = [new OciHugepageLimit("2MB", 4 << 20)], Unified = new Dictionary<string, string> { ["memory.high"] = "1000000" },
            },
        });
        var r = spec.Linux!.Resources!;
        Assert.Equal((1L << 20, 1L << 20), (r.Memory!.Limit, r.Memory.Swap));
        Assert.Equal((256UL, "0-1"), (r.Cpu!.Shares, r.Cpu.Cpus));
        Assert.Equal(100, r.Pids!.Limit);
        Assert.Equal("2MB", Assert.Single(r.HugepageLimits!).PageSize);
        Assert.Equal("1000000", r.Unified!["memory.high"]);
        var noHugetlb = Assert.Throws<HullException>(() => Apply(new ContainerAdjustment { Resources = new ResourceAdjustment { HugepageLimits = [new OciHugepageLimit("2MB", 1)] } },
            new HostInfo { HugetlbControllerAvailable = false }));
        Assert.Equal(ErrorKind.FailedPrecondition, noHugetlb.Kind);
    }

    [Fact]
    public void Oom_score_adj_rlimits_cgroups_path_and_seccomp_are_set_in_range()
    {
        var spec = Apply(new ContainerAdjustment
        {
            OomScoreAdj = 500,
            Rlimits = [new OciRlimit("RLIMIT_NOFILE", 100, 50), new OciRlimit("RLIMIT_NPROC", 10, 5)],
            CgroupsPath = "/custom",
            Seccomp = new OciSeccomp { DefaultAction = "SCMP_ACT_ALLOW" },
        });
        Assert.Equal(500, spec.Process!.OomScoreAdj);
        Assert.Equal([("RLIMIT_NOFILE", 100UL), ("RLIMIT_NPROC", 10UL)], spec.Process.Rlimits!.Select(r => (r.Type, r.Hard)));
        Assert.Equal("/custom", spec.Linux!.CgroupsPath);
        Assert.Equal("SCMP_ACT_ALLOW", spec.Linux.Seccomp!.DefaultAction);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<HullException>(() => Apply(new ContainerAdjustment { OomScoreAdj = 1001 })).Kind);
    }

    [Fact]
    public void Namespaces_are_replaced_or_removed_and_sysctls_follow_the_pod_rules()
    {
        var spec = Apply(new ContainerAdjustment
        {
            Namespaces = [new OciNamespace { Type = "ipc", Path = "/proc/1/ns/ipc" }],
            Sysctls = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" },
        });
        Assert.Equal("/proc/1/ns/ipc", spec.Linux!.Namespaces!.Single(n => n.Type == "ipc").Path);
        Assert.Equal("1", spec.Linux.Sysctl!["net.ipv4.ip_forward"]);

        // Without its own network namespace a container may not set network sysctls.
        var e = Assert.Throws<HullException>(() => Apply(new ContainerAdjustment
        {
            RemovedNamespaces = ["network"],
            Sysctls = new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" },
        }));
        Assert.Contains("host network", e.Message);
        Assert.Contains("not namespaced", Assert.Throws<HullException>(() => Apply(new ContainerAdjustment { Sysctls = new Dictionary<string, string> { ["vm.swappiness"] = "1" } })).Message);
    }

    [Fact]
    public void Hooks_are_appended_and_cdi_devices_need_an_injector()
    {
        var spec = Apply(new ContainerAdjustment { Hooks = new OciHooks { Prestart = [new OciHook { Path = "/bin/true" }] } });
        Assert.Equal("/bin/true", Assert.Single(spec.Hooks!.Prestart!).Path);
        Assert.Throws<HullException>(() => Apply(new ContainerAdjustment { CdiDevices = ["vendor.com/dev=x"] }));
        var injected = SpecAdjuster.Apply(Base, new ContainerAdjustment { CdiDevices = ["vendor.com/dev=x"] }, "c1", new HostInfo(),
            (s, names) => s with { Annotations = new Dictionary<string, string> { ["cdi"] = names[0] } });
        Assert.Equal("vendor.com/dev=x", injected.Annotations!["cdi"]);
    }
}
