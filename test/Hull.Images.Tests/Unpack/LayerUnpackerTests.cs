using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Oci;
using Hull.Images.Snapshots;
using Hull.Images.Tests.Content;
using Hull.Images.Unpack;
using Hull.Linux;

namespace Hull.Images.Tests.Unpack;

public sealed class LayerUnpackerTests : IDisposable
{
    private readonly TestRoot _root = new();

    public void Dispose() => _root.Dispose();

    private ISnapshotter Create(string name) => name == Snapshotters.Overlay
        ? new OverlaySnapshotter(_root.Path, _root.Metadata)
        : new NativeSnapshotter(_root.Path, _root.Metadata);

    private static readonly byte[] Lower = new LayerBuilder()
        .File("a", "from lower").File("b", "kept")
        .Dir("d").File("d/x", "x").Dir("d/sub").File("d/sub/y", "y")
        .Dir("keep", mode: (UnixFileMode)0b111_000_000, uid: 1000, gid: 1000).File("keep/k", "k")
        .File("lib/f", "shared")
        .CharDevice("dev/null", 1, 3)
        .Build();

    private static readonly byte[] Upper = new LayerBuilder()
        .Whiteout("a")
        .Dir("d").Opaque("d").File("d/z", "z")
        .File("c", "new", uid: 1000, gid: 1000, xattrs: new Dictionary<string, string> { ["user.origin"] = "upper" })
        .File("keep/k2", "k2") // "keep" is not listed: its owner and mode come from the lower layer
        .HardLink("lib/g", "lib/f") // a link to a file of the lower layer
        .Build();

    private static Descriptor Gzip(byte[] gz) => new(MediaTypes.OciLayerGzip, "sha256:" + new string('1', 64), gz.Length);
    private static Descriptor Zstd(byte[] zst) => new(MediaTypes.OciLayerZstd, "sha256:" + new string('2', 64), zst.Length);

    private async Task<IReadOnlyList<string>> UnpackBothAsync(ISnapshotter snapshotter)
    {
        var unpacker = new LayerUnpacker(snapshotter);
        var gz = LayerBuilder.Gzip(Lower);
        var zst = LayerBuilder.Zstd(Upper);
        string first = await unpacker.UnpackAsync(new NonSeekableStream(gz), Gzip(gz), null, LayerBuilder.DiffId(Lower), default);
        string second = await unpacker.UnpackAsync(new NonSeekableStream(zst), Zstd(zst), first, LayerBuilder.DiffId(Upper), default);
        return [first, second];
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task A_mounted_chain_shows_the_merged_layers_with_whiteouts_and_opaque_dirs_applied(string name)
    {
        var snapshotter = Create(name);
        var chain = await UnpackBothAsync(snapshotter);
        Assert.Equal(ChainIds.Compute([LayerBuilder.DiffId(Lower), LayerBuilder.DiffId(Upper)]), chain);
        Assert.Equal(LayerBuilder.DiffId(Upper), (await snapshotter.StatAsync(chain[1], default)).Labels[LayerUnpacker.UncompressedLabel]);

        var mounts = await snapshotter.PrepareAsync("container", chain[1]);
        string merged = _root.Sub("merged");
        Directory.CreateDirectory(merged);
        Mounts.MountAll(mounts, merged);
        try
        {
            Assert.False(File.Exists(Path.Combine(merged, "a"))); // whited out
            Assert.Equal("kept", File.ReadAllText(Path.Combine(merged, "b")));
            Assert.Equal(["z"], Directory.EnumerateFileSystemEntries(Path.Combine(merged, "d")).Select(Path.GetFileName)); // opaque
            Assert.Equal(["k", "k2"], Directory.EnumerateFileSystemEntries(Path.Combine(merged, "keep")).Select(Path.GetFileName).Order());
            var keep = FileStatus.Get(Path.Combine(merged, "keep"));
            Assert.Equal((1000u, (UnixFileMode)0b111_000_000), (keep.Uid, keep.Permissions));
            var c = FileStatus.Get(Path.Combine(merged, "c"));
            Assert.Equal((1000u, 1000u), (c.Uid, c.Gid));
            Assert.Equal("upper"u8.ToArray(), ExtendedAttributes.TryGet(Path.Combine(merged, "c"), "user.origin"));
            Assert.Equal("shared", File.ReadAllText(Path.Combine(merged, "lib/g")));
            Assert.Equal(UnixFileType.CharacterDevice, FileStatus.Get(Path.Combine(merged, "dev/null")).Type);

            File.WriteAllText(Path.Combine(merged, "written-by-container"), "rw");
        }
        finally
        {
            Mounts.UnmountAll(merged);
        }
        Assert.Empty(TestRoot.MountPointsBelow(_root.Path));
        // The container's write went to its own snapshot, not into a layer.
        var keys = (await snapshotter.WalkAsync(default)).Select(i => i.Key).Order();
        Assert.Equal(chain.Append("container").Order(), keys);
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task Views_mount_read_only(string name)
    {
        var snapshotter = Create(name);
        var chain = await UnpackBothAsync(snapshotter);
        string target = _root.Sub("view");
        Directory.CreateDirectory(target);
        foreach (var (key, parent) in new[] { ("view-1", chain[0]), ("view-2", chain[1]) })
        {
            Mounts.MountAll(await snapshotter.ViewAsync(key, parent), target);
            try
            {
                Assert.Equal("kept", File.ReadAllText(Path.Combine(target, "b")));
                var e = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(target, "new"), "x"));
                Assert.Contains("Read-only file system", e.Message);
            }
            finally
            {
                Mounts.UnmountAll(target);
            }
        }
    }

    [Fact]
    public async Task One_download_feeds_the_content_store_and_the_unpacker()
    {
        var content = await ContentStore.OpenAsync(_root.Path, _root.Metadata);
        var snapshotter = Create(Snapshotters.Overlay);
        var gz = LayerBuilder.Gzip(Lower);
        var desc = new Descriptor(MediaTypes.OciLayerGzip, "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(gz)), gz.Length);

        await using var ingest = await content.OpenWriterAsync("layer-" + desc.Digest, desc, default);
        var tee = new TeeReadStream(new NonSeekableStream(gz), ingest);
        string chainId = await new LayerUnpacker(snapshotter).UnpackAsync(tee, desc, null, LayerBuilder.DiffId(Lower), default);
        var info = await ingest.CommitAsync();

        Assert.Equal(LayerBuilder.DiffId(Lower), chainId);
        Assert.Equal(gz.Length, info.Size); // the applier read the compressed stream to its end
    }

    [Fact]
    public async Task Overlay_layers_keep_whiteouts_in_overlay_form_in_their_own_directory()
    {
        var snapshotter = (OverlaySnapshotter)Create(Snapshotters.Overlay);
        await UnpackBothAsync(snapshotter);
        string upperFs = Path.Combine(snapshotter.Root, "2", "fs");
        var whiteout = FileStatus.Get(Path.Combine(upperFs, "a"));
        Assert.Equal((UnixFileType.CharacterDevice, 0u, 0u), (whiteout.Type, whiteout.RdevMajor, whiteout.RdevMinor));
        Assert.Equal("y"u8.ToArray(), ExtendedAttributes.TryGet(Path.Combine(upperFs, "d"), "trusted.overlay.opaque"));
        Assert.False(File.Exists(Path.Combine(upperFs, "b"))); // only the layer's own changes
    }

    [Theory]
    [InlineData(Snapshotters.Overlay)]
    [InlineData(Snapshotters.Native)]
    public async Task A_malicious_layer_is_rejected_and_its_snapshot_removed(string name)
    {
        var snapshotter = Create(name);
        var unpacker = new LayerUnpacker(snapshotter);
        string outside = _root.Sub("outside");
        Directory.CreateDirectory(outside);
        var tar = new LayerBuilder().File("fine", "ok").Symlink("a", outside).File("a/pwned", "x").Build();
        var desc = new Descriptor(MediaTypes.OciLayer, "sha256:" + new string('e', 64), tar.Length);

        var e = await Assert.ThrowsAsync<HullException>(() =>
            unpacker.UnpackAsync(new NonSeekableStream(tar), desc, null, LayerBuilder.DiffId(tar), default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(desc.Digest, e.Message);
        Assert.Contains("entry \"a/pwned\"", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        Assert.Empty(await snapshotter.WalkAsync(default));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_root.Path, "snapshots", name)));
    }

    [Fact]
    public async Task A_diff_id_mismatch_is_FailedPrecondition_and_leaves_no_snapshot()
    {
        var snapshotter = Create(Snapshotters.Overlay);
        var gz = LayerBuilder.Gzip(Lower);
        string wrong = "sha256:" + new string('0', 64);
        var e = await Assert.ThrowsAsync<HullException>(() =>
            new LayerUnpacker(snapshotter).UnpackAsync(new NonSeekableStream(gz), Gzip(gz), null, wrong, default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"uncompressed digest is {LayerBuilder.DiffId(Lower)}, but the image config's diff_id is {wrong}", e.Message);
        Assert.Empty(await snapshotter.WalkAsync(default));
    }

    [Fact]
    public async Task An_unpacked_chain_is_not_unpacked_again()
    {
        var snapshotter = Create(Snapshotters.Overlay);
        var chain = await UnpackBothAsync(snapshotter);
        var unread = new NonSeekableStream([0xde, 0xad]);
        string again = await new LayerUnpacker(snapshotter).UnpackAsync(unread, Gzip(Lower), null, LayerBuilder.DiffId(Lower), default);
        Assert.Equal(chain[0], again);
        Assert.Equal(0, unread.Position);
    }
}
