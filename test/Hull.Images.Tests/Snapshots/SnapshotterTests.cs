using Hull.Core;
using Hull.Images.Snapshots;
using Hull.Images.Tests.Content;
using Hull.Linux;

namespace Hull.Images.Tests.Snapshots;

public sealed class SnapshotterTests : IDisposable
{
    private readonly TestRoot _root = new();

    public void Dispose() => _root.Dispose();

    private DirectorySnapshotter Create(string name) => name == Snapshotters.Overlay
        ? new OverlaySnapshotter(_root.Path, _root.Metadata)
        : new NativeSnapshotter(_root.Path, _root.Metadata);

    /// <summary>The writable directory behind an active snapshot's mounts.</summary>
    private static string Writable(IReadOnlyList<Mount> mounts) =>
        mounts[0].Type == "bind" ? mounts[0].Source : mounts[0].Options.Single(o => o.StartsWith("upperdir=", StringComparison.Ordinal))[9..];

    private async Task<DirectorySnapshotter> WithBaseAsync(string name)
    {
        var snapshotter = Create(name);
        var mounts = await snapshotter.PrepareAsync("extract-base", null);
        File.WriteAllText(Path.Combine(Writable(mounts), "base.txt"), "base");
        await snapshotter.CommitAsync("base", "extract-base");
        return snapshotter;
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task Prepare_commit_and_view_report_kinds_parents_and_mounts(string name)
    {
        var snapshotter = await WithBaseAsync(name);
        var baseInfo = await snapshotter.StatAsync("base", default);
        Assert.Equal((SnapshotKind.Committed, (string?)null), (baseInfo.Kind, baseInfo.Parent));

        var mounts = await snapshotter.PrepareAsync("container", "base", new Dictionary<string, string> { ["l"] = "v" });
        var active = await snapshotter.StatAsync("container", default);
        Assert.Equal((SnapshotKind.Active, "base", "v"), (active.Kind, active.Parent, active.Labels["l"]));
        var mount = Assert.Single(mounts);
        if (name == Snapshotters.Overlay)
        {
            Assert.Equal("overlay", mount.Type);
            Assert.Contains(mount.Options, o => o.StartsWith("lowerdir=", StringComparison.Ordinal) && o.EndsWith("/fs", StringComparison.Ordinal));
            Assert.Contains(mount.Options, o => o.StartsWith("workdir=", StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(("bind", "base"), (mount.Type, File.ReadAllText(Path.Combine(mount.Source, "base.txt")))); // a copy
            Assert.Contains("rw", mount.Options);
        }
        Assert.Equal(mounts, await snapshotter.MountsAsync("container", default));

        var view = Assert.Single(await snapshotter.ViewAsync("view", "base"));
        Assert.Equal("bind", view.Type);
        Assert.Contains("ro", view.Options);
        Assert.Equal(["base", "container", "view"], (await snapshotter.WalkAsync(default)).Select(i => i.Key));
        Assert.Equal(ErrorKind.FailedPrecondition, (await Assert.ThrowsAsync<HullException>(() => snapshotter.MountsAsync("base", default))).Kind);
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task Refuses_invalid_changes_with_the_right_kind(string name)
    {
        var snapshotter = await WithBaseAsync(name);
        await snapshotter.PrepareAsync("active", "base");
        await snapshotter.ViewAsync("view", "base");

        async Task Expect(ErrorKind kind, string fragment, Func<Task> action) =>
            Assert.Contains(fragment, (await Assert.ThrowsAsync<HullException>(action) is var e && e.Kind == kind ? e : throw new Exception(e.ToString())).Message);

        await Expect(ErrorKind.AlreadyExists, "\"active\" already exists", () => snapshotter.PrepareAsync("active", "base"));
        await Expect(ErrorKind.NotFound, "parent snapshot \"nope\"", () => snapshotter.PrepareAsync("x", "nope"));
        await Expect(ErrorKind.FailedPrecondition, "\"active\" of \"x\" is active, not committed", () => snapshotter.PrepareAsync("x", "active"));
        await Expect(ErrorKind.FailedPrecondition, "only active snapshots can be committed", () => snapshotter.CommitAsync("c", "view"));
        await Expect(ErrorKind.AlreadyExists, "\"base\" already exists", () => snapshotter.CommitAsync("base", "active"));
        await Expect(ErrorKind.NotFound, "snapshot \"gone\" not found", () => snapshotter.RemoveAsync("gone", default));
        Assert.Empty(Directory.EnumerateDirectories(snapshotter.Root, "new-*"));
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task Remove_refuses_a_snapshot_with_children_and_deletes_leaves(string name)
    {
        var snapshotter = await WithBaseAsync(name);
        await snapshotter.PrepareAsync("child", "base");

        var e = await Assert.ThrowsAsync<HullException>(() => snapshotter.RemoveAsync("base", default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("snapshot \"base\" has 1 child snapshot(s) (\"child\")", e.Message);

        int before = Directory.EnumerateDirectories(snapshotter.Root).Count();
        await snapshotter.RemoveAsync("child", default);
        await snapshotter.RemoveAsync("base", default);
        Assert.Empty(await snapshotter.WalkAsync(default));
        Assert.Equal(2, before);
        Assert.Empty(Directory.EnumerateDirectories(snapshotter.Root)); // no removing-* left behind
    }

    [Fact]
    public async Task Cleanup_settles_what_a_crash_left_behind()
    {
        var snapshotter = await WithBaseAsync(Snapshotters.Overlay);
        await snapshotter.PrepareAsync("kept", "base");
        string keptDir = Directory.EnumerateDirectories(snapshotter.Root).Max()!; // ids grow
        string keptId = Path.GetFileName(keptDir);

        // Crashed after the rename but before the removal committed: the row is still there.
        Directory.Move(keptDir, Path.Combine(snapshotter.Root, "removing-" + keptId));
        // Crashed after the removal committed, before rm -rf.
        Directory.CreateDirectory(Path.Combine(snapshotter.Root, "removing-9999", "fs", "deep"));
        // Crashed while preparing, and a directory whose row never committed.
        Directory.CreateDirectory(Path.Combine(snapshotter.Root, "new-0123abc", "fs"));
        Directory.CreateDirectory(Path.Combine(snapshotter.Root, "12345", "fs"));

        _root.ReopenMetadata(); // hulld restarts
        var reopened = await Snapshotters.OpenAsync(_root.Path, _root.Metadata, Snapshotters.Overlay);

        Assert.Equal(SnapshotKind.Active, (await reopened.StatAsync("kept", default)).Kind);
        Assert.True(Directory.Exists(keptDir));
        Assert.Equal(2, Directory.EnumerateDirectories(snapshotter.Root).Count()); // base and kept, nothing else
        Assert.NotNull(await reopened.MountsAsync("kept", default));
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task Usage_counts_allocated_bytes_and_inodes_with_hard_links_once(string name)
    {
        var snapshotter = Create(name);
        string dir = Writable(await snapshotter.PrepareAsync("a", null));
        File.WriteAllBytes(Path.Combine(dir, "big"), new byte[256 * 1024]);
        FileNodes.CreateHardLink(Path.Combine(dir, "big"), Path.Combine(dir, "link"));
        var usage = await snapshotter.UsageAsync("a", default);
        Assert.Equal(2, usage.Inodes); // the fs directory and the one file
        Assert.InRange(usage.Size, 256 * 1024, 256 * 1024 + 64 * 1024);
    }

    [Fact]
    public async Task Overlayfs_is_detected_and_chosen_by_default()
    {
        Assert.Null(OverlaySupport.Check(_root.Path));
        var snapshotter = await Snapshotters.OpenAsync(_root.Path, _root.Metadata);
        Assert.Equal(Snapshotters.Overlay, snapshotter.Name);
        Assert.Empty(TestRoot.MountPointsBelow(_root.Path));
        Assert.Single(Directory.EnumerateFileSystemEntries(_root.Sub("snapshots"))); // the check left nothing but overlayfs/
    }

    [Fact]
    public async Task Native_copies_keep_owners_modes_links_devices_and_xattrs()
    {
        var snapshotter = Create(Snapshotters.Native);
        string dir = Writable(await snapshotter.PrepareAsync("a", null));
        string file = Path.Combine(dir, "f");
        File.WriteAllText(file, "x");
        FileNodes.SetOwner(file, 1000, 1001);
        File.SetUnixFileMode(file, (UnixFileMode)0b100_111_101_101);
        ExtendedAttributes.Set(file, "user.k", [1, 0, 255]);
        FileNodes.SetTimes(file, 1, 0, 1_600_000_000, 5);
        FileNodes.CreateHardLink(file, Path.Combine(dir, "hard"));
        File.CreateSymbolicLink(Path.Combine(dir, "sym"), "/nowhere");
        FileNodes.CreateCharacterDevice(Path.Combine(dir, "null"), (UnixFileMode)0b110_110_110, 1, 3);
        await snapshotter.CommitAsync("a-committed", "a");

        string copy = Writable(await snapshotter.PrepareAsync("b", "a-committed"));
        var status = FileStatus.Get(Path.Combine(copy, "f"));
        Assert.Equal((1000u, 1001u, (UnixFileMode)0b100_111_101_101, 1_600_000_000L, 5u),
            (status.Uid, status.Gid, status.Permissions, status.MtimeSeconds, status.MtimeNanoseconds));
        Assert.Equal(new byte[] { 1, 0, 255 }, ExtendedAttributes.TryGet(Path.Combine(copy, "f"), "user.k"));
        Assert.Equal(status.Inode, FileStatus.Get(Path.Combine(copy, "hard")).Inode);
        Assert.NotEqual(FileStatus.Get(file).Inode, status.Inode);
        Assert.Equal("/nowhere", new FileInfo(Path.Combine(copy, "sym")).LinkTarget);
        Assert.Equal((1u, 3u), (FileStatus.Get(Path.Combine(copy, "null")).RdevMajor, FileStatus.Get(Path.Combine(copy, "null")).RdevMinor));
    }
}
