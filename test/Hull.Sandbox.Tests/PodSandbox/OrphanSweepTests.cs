using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Namespaces;
using Microsoft.Extensions.Logging.Abstractions;
using Hull.Sandbox.PodSandbox;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.PodSandbox;

/// <summary>The startup sweep of namespace pins and sandbox directories the store does not know.</summary>
public sealed class OrphanSweepTests
{
    private const string Known = "aaaa000000000000000000000000000000000000000000000000000000000001";
    private const string Orphan = "bbbb000000000000000000000000000000000000000000000000000000000002";
    private const string MountedOrphan = "cccc000000000000000000000000000000000000000000000000000000000003";

    /// <summary>The podsandbox sandboxer with the systemd driver (so the sweep touches no cgroup); CNI and tasks are never used here.</summary>
    internal static PodSandboxController Controller(string state)
    {
        var handler = new RuntimeHandler
        {
            Name = "runc", Sandboxer = PodSandboxController.SandboxerName, RuntimeBinary = "runc", CniConfDir = Path.Combine(state, "net.d"),
            Snapshotter = "overlayfs", CgroupDriver = CgroupDriver.Systemd,
        };
        var loggers = NullLoggerFactory.Instance;
        return new PodSandboxController(new PodSandboxOptions { StateDirectory = state }, new RuntimeHandlers([handler], "runc"), new NamespacePinner(state),
            new CniManagers(new CniOptions { ConfDir = handler.CniConfDir, BinDirs = [], CacheDir = Path.Combine(state, "cni") }, loggers),
            new TaskManagers(new TaskOptions { StateDirectory = state, RuntimePath = "runc" }, loggers),
            new SpecBuilder(new SpecBuilderOptions(), HostInfo.Detect()));
    }

    private static void Touch(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "");
    }

    [Fact]
    public async Task Pins_and_directories_of_unknown_pods_are_removed_and_those_of_known_pods_kept()
    {
        using var temp = new TempDirectory();
        var state = temp.Path;
        foreach (var kind in new[] { "net", "ipc", "uts" })
        {
            Touch(Path.Combine(state, "ns", kind, Known));
            Touch(Path.Combine(state, "ns", kind, Orphan));
        }
        Touch(Path.Combine(state, "sandboxes", Known, "hosts"));
        Touch(Path.Combine(state, "sandboxes", Orphan, "hosts"));

        var swept = await Controller(state).SweepOrphansAsync(new HashSet<string> { Known }, CancellationToken.None);

        Assert.Equal([Orphan], swept);
        foreach (var kind in new[] { "net", "ipc", "uts" })
        {
            Assert.True(File.Exists(Path.Combine(state, "ns", kind, Known)));
            Assert.False(File.Exists(Path.Combine(state, "ns", kind, Orphan)));
        }
        Assert.True(File.Exists(Path.Combine(state, "sandboxes", Known, "hosts")));
        Assert.False(Directory.Exists(Path.Combine(state, "sandboxes", Orphan)));
    }

    [RootFact]
    public async Task An_orphaned_directory_with_a_mounted_shm_is_unmounted_before_it_is_deleted()
    {
        using var temp = new TempDirectory();
        var state = temp.Path;
        var dir = PodSandboxFiles.SandboxDirectory(state, MountedOrphan);
        Directory.CreateDirectory(dir);
        PodSandboxFiles.MountShm(dir, 1 << 20);
        await File.WriteAllTextAsync(Path.Combine(PodSandboxFiles.ShmPath(dir), "data"), "x");
        Assert.NotEmpty(Hull.Linux.MountInfo.PointsBelow(dir));

        var swept = await Controller(state).SweepOrphansAsync(new HashSet<string>(), CancellationToken.None);

        Assert.Equal([MountedOrphan], swept);
        Assert.Empty(Hull.Linux.MountInfo.PointsBelow(dir));
        Assert.False(Directory.Exists(dir));
    }
}
