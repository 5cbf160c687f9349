using System.Text;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Tests.Content;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Tests.Gc;

public sealed class GarbageCollectorTests : IDisposable
{
    private readonly TestRoot _root = new();
    private readonly LeaseManager _leases = new();
    private ContentStore _content = null!;
    private ISnapshotter _snapshotter = null!;
    private ImageStore _images = null!;
    private GarbageCollector _gc = null!;

    public void Dispose() => _root.Dispose();

    private async Task OpenAsync()
    {
        _content = await ContentStore.OpenAsync(_root.Path, _root.Metadata);
        _snapshotter = await Snapshotters.OpenAsync(_root.Path, _root.Metadata, Snapshotters.Native);
        _images = new ImageStore(_root.Metadata);
        _gc = new GarbageCollector(_content, _snapshotter, _images, _leases, NullLogger.Instance);
    }

    private async Task<Descriptor> BlobAsync(string mediaType, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var descriptor = new Descriptor(mediaType, Digests.Sha256(bytes), bytes.Length);
        await using var writer = await _content.OpenWriterAsync("test-" + descriptor.Digest, descriptor, default);
        await writer.WriteAsync(bytes);
        await writer.CommitAsync();
        return descriptor;
    }

    private Task<Descriptor> ManifestAsync(Descriptor config, params Descriptor[] layers) => BlobAsync(MediaTypes.OciManifest, $$"""
        {"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{Json(config)}},"layers":[{{string.Join(",", layers.Select(Json))}}]}
        """);

    private static string Json(Descriptor d) => $$"""{"mediaType":"{{d.MediaType}}","digest":"{{d.Digest}}","size":{{d.Size}}}""";

    /// <summary>A committed snapshot <paramref name="name"/> on <paramref name="parent"/>, with one file.</summary>
    private async Task CommittedAsync(string name, string? parent)
    {
        var mounts = await _snapshotter.PrepareAsync("extract-build-" + name, parent);
        await File.WriteAllTextAsync(Path.Combine(mounts[0].Source, name), name);
        await _snapshotter.CommitAsync(name, "extract-build-" + name);
    }

    private async Task<string[]> SnapshotKeysAsync() => (await _snapshotter.WalkAsync(default)).Select(s => s.Key).Order(StringComparer.Ordinal).ToArray();

    private async Task<string[]> BlobDigestsAsync() => (await _content.WalkAsync(default)).Select(b => b.Digest).Order(StringComparer.Ordinal).ToArray();

    private static ImageRecord Image(string name, Descriptor target, string manifest, string config, string chain) =>
        new(name, target, manifest, config, chain, Snapshotters.Native, 0, new Dictionary<string, string>(), DateTimeOffset.UtcNow, DateTimeOffset.UtcNow);

    [Fact]
    public async Task Collect_removes_exactly_what_no_image_lease_or_container_references()
    {
        await OpenAsync();
        // Image a: index -> manifest (config, layer1, layer2); the index also lists an arm64 manifest that is not stored.
        var layer1 = await BlobAsync(MediaTypes.OciLayerGzip, "layer 1");
        var layer2 = await BlobAsync(MediaTypes.OciLayerGzip, "layer 2");
        var config = await BlobAsync(MediaTypes.OciConfig, """{"rootfs":{"type":"layers","diff_ids":[]}}""");
        var manifest = await ManifestAsync(config, layer1, layer2);
        var index = await BlobAsync(MediaTypes.OciIndex, $$"""
            {"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[{{Json(manifest)}},{"mediaType":"{{MediaTypes.OciManifest}}","digest":"sha256:{{new string('a', 64)}}","size":1}]}
            """);
        // Garbage: an old manifest of the same repository (sharing layer1) with its own layer and config, and a stray blob.
        var oldLayer = await BlobAsync(MediaTypes.OciLayerGzip, "old layer");
        var oldConfig = await BlobAsync(MediaTypes.OciConfig, """{"old":true}""");
        var oldManifest = await ManifestAsync(oldConfig, layer1, oldLayer);
        var stray = await BlobAsync("application/octet-stream", "stray");
        // Held by a pull in progress.
        var leasedBlob = await BlobAsync(MediaTypes.OciLayerGzip, "downloading");

        // Snapshots: a's chain c1 <- c2 with an unreferenced child x; a dead chain d1 <- d2 <- d3; a container's
        // active snapshot on e1; a pull's committed l1, its extraction of l2 on top, and an abandoned extraction.
        await CommittedAsync("c1", null);
        await CommittedAsync("c2", "c1");
        await CommittedAsync("x", "c2");
        await CommittedAsync("d1", null);
        await CommittedAsync("d2", "d1");
        await CommittedAsync("d3", "d2");
        await CommittedAsync("e1", null);
        await _snapshotter.PrepareAsync("container-1", "e1");
        await CommittedAsync("l1", null);
        await _snapshotter.PrepareAsync($"extract-{Guid.NewGuid():N}-l2", "l1");
        await _snapshotter.PrepareAsync($"extract-{Guid.NewGuid():N}-z9", "c1");

        await _images.PutAsync([Image("example.com/a:1", index, manifest.Digest, config.Digest, "c2")], default);
        var lease = _leases.Create("pull example.com/l:1");
        lease.AddContent(leasedBlob.Digest);
        lease.AddChain("l1");
        lease.AddChain("l2");
        var gc = new GarbageCollector(_content, _snapshotter, _images, _leases, NullLogger.Instance,
            _ => Task.FromResult<IReadOnlyCollection<string>>(["container-1"]));

        var result = await gc.CollectAsync(default);

        Assert.Equal(new[] { index, manifest, config, layer1, layer2, leasedBlob }.Select(d => d.Digest).Order(StringComparer.Ordinal), await BlobDigestsAsync());
        string[] kept = ["c1", "c2", "container-1", "e1", "l1"];
        Assert.Equal(kept, (await SnapshotKeysAsync()).Where(k => !k.StartsWith("extract-", StringComparison.Ordinal)));
        Assert.Single(await SnapshotKeysAsync(), k => k.StartsWith("extract-", StringComparison.Ordinal) && k.EndsWith("-l2", StringComparison.Ordinal));
        Assert.Equal(4, result.ContentRemoved);
        Assert.Equal(new[] { oldLayer, oldConfig, oldManifest, stray }.Sum(d => d.Size), result.BytesRemoved);
        // x, d3, d2, d1 and the abandoned extraction: a chain goes leaf first, so no removal is refused for having children.
        Assert.Equal(5, result.SnapshotsRemoved);
        Assert.Equal(6, Directory.EnumerateDirectories(_root.Sub("snapshots", "native")).Count());
        foreach (var gone in new[] { oldLayer, oldConfig, oldManifest, stray })
            Assert.False(File.Exists(_root.Sub("content", "blobs", "sha256", gone.Digest["sha256:".Length..])));

        // A second collection finds nothing more: collecting is idempotent.
        Assert.Equal(new GcResult(0, 0, 0), await gc.CollectAsync(default));

        // When the pull's lease goes, what only it held goes with the next collection.
        lease.Dispose();
        var afterLease = await gc.CollectAsync(default);
        Assert.Equal((1, 2), (afterLease.ContentRemoved, afterLease.SnapshotsRemoved));
        Assert.Equal(["c1", "c2", "container-1", "e1"], await SnapshotKeysAsync());
        Assert.DoesNotContain(leasedBlob.Digest, await BlobDigestsAsync());
    }

    [Fact]
    public async Task Removing_the_last_name_of_an_image_lets_its_content_and_snapshots_go_but_not_those_another_image_shares()
    {
        await OpenAsync();
        var shared = await BlobAsync(MediaTypes.OciLayerGzip, "base layer");
        var top = await BlobAsync(MediaTypes.OciLayerGzip, "top layer");
        var baseConfig = await BlobAsync(MediaTypes.OciConfig, """{"image":"base"}""");
        var appConfig = await BlobAsync(MediaTypes.OciConfig, """{"image":"app"}""");
        var baseManifest = await ManifestAsync(baseConfig, shared);
        var appManifest = await ManifestAsync(appConfig, shared, top);
        await CommittedAsync("base", null);
        await CommittedAsync("app", "base");
        await _images.PutAsync(
        [
            Image("example.com/base:1", baseManifest, baseManifest.Digest, baseConfig.Digest, "base"),
            Image("example.com/app:1", appManifest, appManifest.Digest, appConfig.Digest, "app"),
            Image($"example.com/app@{appManifest.Digest}", appManifest, appManifest.Digest, appConfig.Digest, "app"),
        ], default);
        Assert.Equal(new GcResult(0, 0, 0), await _gc.CollectAsync(default));

        // One of app's two names: nothing goes.
        await _images.DeleteAsync(["example.com/app:1"], default);
        Assert.Equal(new GcResult(0, 0, 0), await _gc.CollectAsync(default));

        await _images.DeleteAsync([$"example.com/app@{appManifest.Digest}"], default);
        var result = await _gc.CollectAsync(default);
        Assert.Equal((3, 1), (result.ContentRemoved, result.SnapshotsRemoved));
        Assert.Equal(new[] { shared, baseConfig, baseManifest }.Select(d => d.Digest).Order(StringComparer.Ordinal), await BlobDigestsAsync());
        Assert.Equal(["base"], await SnapshotKeysAsync());
    }

    [Fact]
    public async Task Content_and_snapshots_a_lease_holds_survive_until_it_is_released()
    {
        await OpenAsync();
        // A pull names what it will create before creating it.
        using (var lease = _leases.Create("pull"))
        {
            var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256(Encoding.UTF8.GetBytes("fresh")), 5);
            lease.AddContent(blob.Digest);
            lease.AddChain("fresh");
            await BlobAsync(blob.MediaType, "fresh");
            await _snapshotter.PrepareAsync($"extract-{Guid.NewGuid():N}-fresh", null);
            Assert.Equal(new GcResult(0, 0, 0), await _gc.CollectAsync(default));
            Assert.Single(await BlobDigestsAsync());
            Assert.Single(await SnapshotKeysAsync());
        }
        var result = await _gc.CollectAsync(default);
        Assert.Equal((1, 1), (result.ContentRemoved, result.SnapshotsRemoved));
        Assert.Empty(await BlobDigestsAsync());
        Assert.Empty(await SnapshotKeysAsync());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root.Sub("snapshots", "native")));
    }

    [Fact]
    public async Task A_collection_after_reopening_the_stores_removes_what_a_crashed_pull_left()
    {
        await OpenAsync();
        // A pull that died: its blobs and its extraction snapshot are on disk, its in-memory lease is gone.
        var layer = await BlobAsync(MediaTypes.OciLayerGzip, "half pulled");
        await CommittedAsync("p1", null);
        var mounts = await _snapshotter.PrepareAsync($"extract-{Guid.NewGuid():N}-p2", "p1");
        await File.WriteAllTextAsync(Path.Combine(mounts[0].Source, "partial"), "x");

        _root.ReopenMetadata();
        await OpenAsync();
        var result = await _gc.CollectAsync(default);
        Assert.Equal((1, 2), (result.ContentRemoved, result.SnapshotsRemoved));
        Assert.Empty(await BlobDigestsAsync());
        Assert.Empty(await SnapshotKeysAsync());
        Assert.False(File.Exists(_root.Sub("content", "blobs", "sha256", layer.Digest["sha256:".Length..])));
    }
}
