using Hull.Runtime.Handlers;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

/// <summary>Requests and host facts for builder tests: a fixed, predictable host (kernel 6.1, amd64, cgroup v1).</summary>
public static class SpecFixtures
{
    public const string Passwd = """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        # a comment
        app:x:1000:1000:App User:/home/app:/bin/sh
        nohome:x:1001:1001::
        """;

    public const string Group = """
        root:x:0:
        daemon:x:1:root
        wheel:x:10:root,app
        app:x:1000:app
        staff:x:50:app, other
        audio:x:63:
        """;

    public static HostInfo Host(bool cgroupV2 = false) => new()
    {
        Kernel = new KernelVersion(6, 1),
        Architecture = "amd64",
        CgroupV2Unified = cgroupV2,
        SeccompEnabled = true,
        AppArmor = AppArmorHost.Disabled,
        HugetlbControllerAvailable = true,
        SwapControllerAvailable = true,
        AllCapabilities = Capabilities.KernelNames,
        OomScoreAdj = 0,
    };

    public static string Rootfs(TempDirectory dir, bool withFiles = true)
    {
        string rootfs = dir.Dir("rootfs");
        if (withFiles)
        {
            dir.Write("rootfs/etc/passwd", Passwd);
            dir.Write("rootfs/etc/group", Group);
        }
        return rootfs;
    }

    /// <summary>A runtime handler as hulld binds the default one (cgroupfs, runc).</summary>
    public static RuntimeHandler Handler(CgroupDriver driver = CgroupDriver.Cgroupfs) => new()
    {
        Name = "runc",
        Sandboxer = "podsandbox",
        RuntimeBinary = "runc",
        CniConfDir = "/etc/cni/net.d",
        Snapshotter = "overlayfs",
        CgroupDriver = driver,
    };

    public static ContainerSpecRequest Request(string rootfs, ContainerConfig? container = null, SandboxContext? sandbox = null, ImageConfig? image = null,
        RuntimeHandler? handler = null) => new()
    {
        Handler = handler ?? Handler(),
        ContainerId = "c0ffee",
        RootfsPath = rootfs,
        ImageName = "docker.io/library/app:1",
        Container = container ?? new ContainerConfig { Name = "app", Command = ["/bin/app"] },
        Image = image ?? new ImageConfig(),
        Sandbox = sandbox ?? new SandboxContext
        {
            SandboxId = "pod1",
            PodName = "web",
            PodNamespace = "default",
            PodUid = "uid-1",
            Hostname = "web-0",
            Network = NamespaceRef.At("/run/hull/ns/net/pod1"),
            Ipc = NamespaceRef.At("/run/hull/ns/ipc/pod1"),
            Uts = NamespaceRef.At("/run/hull/ns/uts/pod1"),
            SharedPidNamespacePath = "/proc/4242/ns/pid",
        },
    };

    public static SpecBuilder Builder(SpecBuilderOptions? options = null, HostInfo? host = null) =>
        new(options ?? new SpecBuilderOptions(), host ?? Host());
}
