using Hull.Sandbox.Namespaces;
using Hull.Sandbox.PodSandbox;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.PodSandbox;

/// <summary>The startup sweep of namespace pins and sandbox directories the store does not know.</summary>
public sealed class OrphanSweepTests
{
    private const string Known = "aaaa000000000000000000000000000000000000000000000000000000000001";
    private const string Orphan = "bbbb000000000000000000000000000000000000000000000000000000000002";
    private const string MountedOrphan = "cccc000000000000000000000000000000000000000000000000000000000003";

    private static PodSandboxController Controller(string state) =>
        new(new PodSandboxOptions { StateDirectory = state, SystemdCgroup = true }, new NamespacePinner(state),
            _ => throw new InvalidOperationException("no CNI in this test"), _ => throw new InvalidOperationException("no tasks in this test"));

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
        Assert.NotEmpty(MountInfo.MountPointsBelow(dir));

        var swept = await Controller(state).SweepOrphansAsync(new HashSet<string>(), CancellationToken.None);

        Assert.Equal([MountedOrphan], swept);
        Assert.Empty(MountInfo.MountPointsBelow(dir));
        Assert.False(Directory.Exists(dir));
    }
}
