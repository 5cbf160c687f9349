using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Tests.Content;
using Hull.Images.Tests.Registry;
using Hull.Images.Transfer;
using Hull.Images.Verifiers;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Tests.Transfer;

/// <summary>
/// <see cref="ImagePuller"/> against an in-memory registry (one layer shared by an amd64 and an arm64 image,
/// under an index tagged "1") that can corrupt, cut or stall the layer, into a native snapshotter.
/// </summary>
public sealed class ImagePullerTests : IAsyncLifetime
{
    private const string Name = "fake.test/hull/fake:1";
    private const string BrokenName = "fake.test/hull/fake:broken";
    private static readonly TestImage Image = TestImage.Create();
    // A single-platform image whose one "gzip" layer is not gzip at all, though its digests are right.
    private static readonly TestBlob BrokenLayer = TestBlob.Of(MediaTypes.OciLayerGzip, [0x1f, 0x8b, 0x08, 0x00, .. "this is not deflate data, and not a tar"u8]);
    private static readonly TestBlob BrokenConfig = TestBlob.Of(MediaTypes.OciConfig, System.Text.Encoding.UTF8.GetBytes(
        $$$"""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["{{{BrokenLayer.Descriptor.Digest}}}"]}}"""));
    private static readonly TestBlob BrokenManifest = TestBlob.Of(MediaTypes.OciManifest, System.Text.Encoding.UTF8.GetBytes(
        $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{DescriptorJson(BrokenConfig)}},"layers":[{{DescriptorJson(BrokenLayer)}}]}"""));

    // An image whose config is larger than Hull reads (its padding is valid JSON, so only the size is wrong with it).
    private const string BigConfigName = "fake.test/hull/fake:bigconfig";
    private static readonly TestBlob BigConfig = TestBlob.Of(MediaTypes.OciConfig, System.Text.Encoding.UTF8.GetBytes(
        $$$"""{"architecture":"amd64","os":"linux","comment":"{{{new string('x', ImageConfig.MaxSize)}}}","rootfs":{"type":"layers","diff_ids":["{{{DiffIdOf(Image.For("amd64").Config)}}}"]}}"""));
    private static readonly TestBlob BigConfigManifest = TestBlob.Of(MediaTypes.OciManifest, System.Text.Encoding.UTF8.GetBytes(
        $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{DescriptorJson(BigConfig)}},"layers":[{{DescriptorJson(Image.Layer)}}]}"""));

    private static string DiffIdOf(TestBlob config) => ImageConfig.Parse(config.Content, "test").RootFs.DiffIds[0];

    private static string DescriptorJson(TestBlob b) =>
        $$"""{"mediaType":"{{b.Descriptor.MediaType}}","digest":"{{b.Descriptor.Digest}}","size":{{b.Descriptor.Size}}}""";

    private readonly TestRoot _root = new();
    private readonly TestDirectory _hosts = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private TestHttpServer _server = null!;
    private RegistryClient _registry = null!;
    private ContentStore _content = null!;
    private ISnapshotter _snapshotter = null!;
    private ImageStore _images = null!;
    private DeprecationRegistry _deprecations = null!;

    /// <summary>How the registry answers the n-th (1-based) GET of the layer; null serves it whole.</summary>
    private Func<HttpListenerContext, int, Task>? _layerFault;
    private int _layerGets;

    public async Task InitializeAsync()
    {
        _server = new TestHttpServer(ServeAsync);
        _hosts.Write("fake.test/hosts.toml", $"server = \"{_server.Url}\"\n");
        _registry = new RegistryClient(new RegistryHosts(_hosts.Path), new RegistryClientOptions
        {
            RetryDelay = TimeSpan.FromMilliseconds(5), MaxRetryDelay = TimeSpan.FromMilliseconds(20), MaxRetryAttempts = 2,
        });
        _content = await ContentStore.OpenAsync(_root.Path, _root.Metadata);
        _snapshotter = await Snapshotters.OpenAsync(_root.Path, _root.Metadata, Snapshotters.Native);
        _images = new ImageStore(_root.Metadata);
        _deprecations = new DeprecationRegistry(null, NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        _registry.Dispose();
        await _server.DisposeAsync();
        _hosts.Dispose();
        _root.Dispose();
    }

    private ImagePuller Puller(PullOptions? options = null, IImageVerifier? verifier = null)
    {
        var leases = new LeaseManager();
        var gc = new GarbageCollector(_content, _snapshotter, _images, leases, NullLogger.Instance);
        return new ImagePuller(_registry, _content, _snapshotter, _images, leases, gc, verifier ?? new AllowAll(), _deprecations,
            (options ?? new PullOptions()) with { Platforms = PlatformMatcher.Only(new Platform("linux", "amd64")) }, NullLogger.Instance);
    }

    private async Task AssertNothingStoredAsync()
    {
        Assert.Empty(await _images.ListAsync(default));
        Assert.Empty(await _content.WalkAsync(default));
        Assert.Empty(await _content.ListIngestsAsync(default));
        Assert.Empty(await _snapshotter.WalkAsync(default));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root.Sub("snapshots", "native")));
    }

    [Fact]
    public async Task A_pull_unpacks_the_platform_image_and_records_its_tag_and_digest_names()
    {
        var amd64 = Image.For("amd64");
        var progress = new ConcurrentQueue<PullProgress>();

        var record = await Puller().PullAsync(Name, null, new SyncProgress(progress.Enqueue), default);

        Assert.Equal(amd64.Config.Descriptor.Digest, record.Id);
        Assert.Equal(Image.Index.Descriptor.Digest, record.Target.Digest);
        Assert.Equal(amd64.Manifest.Descriptor.Digest, record.ManifestDigest);
        Assert.Equal([Name, $"fake.test/hull/fake@{Image.Index.Descriptor.Digest}"], (await _images.ByIdAsync(record.Id, default)).Select(r => r.Name));
        var snapshot = await _snapshotter.StatAsync(record.ChainId, default);
        Assert.Equal(SnapshotKind.Committed, snapshot.Kind);
        Assert.Single(await _snapshotter.WalkAsync(default)); // no extraction snapshot is left
        Assert.Equal(
            new[] { Image.Index, amd64.Manifest, amd64.Config, Image.Layer }.Select(b => b.Descriptor.Digest).Order(StringComparer.Ordinal),
            (await _content.WalkAsync(default)).Select(c => c.Digest));
        Assert.Empty(await _content.ListIngestsAsync(default));
        Assert.Contains(progress, p => p.Digest == Image.Layer.Descriptor.Digest && p.Phase == PullPhase.Done);
        Assert.Contains(progress, p => p.Kind == "image" && p.Phase == PullPhase.Done);
    }

    [Fact]
    public async Task A_corrupted_layer_is_reported_as_a_digest_mismatch_naming_image_and_layer_and_nothing_is_kept()
    {
        _layerFault = (context, _) =>
        {
            var corrupt = (byte[])Image.Layer.Content.Clone();
            corrupt[corrupt.Length / 2] ^= 0xFF;
            return WriteBlobAsync(context, corrupt);
        };

        var e = await Assert.ThrowsAsync<HullException>(() => Puller().PullAsync(Name, null, null, default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"image \"{Name}\"", e.Message);
        Assert.Contains(Image.Layer.Descriptor.Digest, e.Message);
        Assert.Contains("digest mismatch", e.Message);
        Assert.Equal(1, _layerGets);
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_layer_that_matches_its_digest_but_is_no_tar_is_reported_as_invalid_naming_image_and_layer()
    {
        // The registry serves exactly what the manifest names; the image itself is broken, so no digest is to blame.
        var e = await Assert.ThrowsAsync<HullException>(() => Puller().PullAsync(BrokenName, null, null, default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"image \"{BrokenName}\"", e.Message);
        Assert.Contains(BrokenLayer.Descriptor.Digest, e.Message);
        Assert.DoesNotContain("mismatch", e.Message);
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_config_larger_than_Hull_reads_is_refused_before_it_is_fetched_and_nothing_is_kept()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => Puller().PullAsync(BigConfigName, null, null, default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"image \"{BigConfigName}\"", e.Message);
        Assert.Contains($"{BigConfig.Descriptor.Digest} is {BigConfig.Content.Length} bytes, more than the {ImageConfig.MaxSize}", e.Message);
        Assert.DoesNotContain(_requests, r => r.EndsWith(BigConfig.Descriptor.Digest, StringComparison.Ordinal));
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_layer_download_that_breaks_once_is_resumed()
    {
        _layerFault = (context, n) => n == 1 ? CutAsync(context, Image.Layer.Content.Length / 3) : WriteBlobAsync(context, Image.Layer.Content);

        var record = await Puller().PullAsync(Name, null, null, default);
        Assert.Equal(Image.For("amd64").Config.Descriptor.Digest, record.Id);
        Assert.Equal(2, _layerGets);
        Assert.Empty(await _content.ListIngestsAsync(default));
    }

    [Fact]
    public async Task A_layer_download_that_keeps_breaking_is_Unavailable_naming_image_and_blob_and_nothing_is_kept()
    {
        _layerFault = (context, _) => CutAsync(context, 1000);

        var e = await Assert.ThrowsAsync<HullException>(() => Puller().PullAsync(Name, null, null, default));
        Assert.Equal(ErrorKind.Unavailable, e.Kind);
        Assert.Contains($"image \"{Name}\"", e.Message);
        Assert.Contains(Image.Layer.Descriptor.Digest, e.Message);
        Assert.True(_layerGets > 1, "the download was not resumed before giving up");
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_stalled_download_fails_with_DeadlineExceeded_after_the_progress_timeout_and_nothing_is_kept()
    {
        _layerFault = (_, _) => Task.Delay(Timeout.Infinite, _server.Stopping);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HullException>(() =>
            Puller(new PullOptions { ProgressTimeout = TimeSpan.FromMilliseconds(400) }).PullAsync(Name, null, null, default));
        Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
        Assert.Contains($"image \"{Name}\"", e.Message);
        Assert.Contains("no progress", e.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(10));
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task Concurrent_pulls_of_one_name_share_one_download()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _layerFault = async (context, _) =>
        {
            await release.Task;
            await WriteBlobAsync(context, Image.Layer.Content);
        };
        var puller = Puller();

        var pulls = Enumerable.Range(0, 3).Select(_ => puller.PullAsync(Name, null, null, default)).ToArray();
        await WaitForAsync(() => _layerGets == 1);
        release.SetResult();
        var records = await Task.WhenAll(pulls);

        Assert.Single(records.Select(r => r.Id).Distinct());
        Assert.Equal(1, _layerGets);
        Assert.Equal(1, _requests.Count(r => r.Contains("/manifests/1", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_caller_that_gives_up_does_not_fail_the_others_sharing_its_pull()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _layerFault = async (context, _) =>
        {
            await release.Task;
            await WriteBlobAsync(context, Image.Layer.Content);
        };
        var puller = Puller();
        using var impatient = new CancellationTokenSource();

        var first = puller.PullAsync(Name, null, null, impatient.Token);
        var second = puller.PullAsync(Name, null, null, default);
        await WaitForAsync(() => _layerGets == 1);
        await impatient.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        release.SetResult();
        Assert.Equal(Image.For("amd64").Config.Descriptor.Digest, (await second).Id);
    }

    [Fact]
    public async Task A_pull_every_caller_gave_up_on_stops_and_leaves_nothing()
    {
        _layerFault = (_, _) => Task.Delay(Timeout.Infinite, _server.Stopping);
        var puller = Puller(new PullOptions { ProgressTimeout = TimeSpan.Zero });
        using var kubelet = new CancellationTokenSource();

        var pull = puller.PullAsync(Name, null, null, kubelet.Token);
        await WaitForAsync(() => _layerGets == 1);
        await kubelet.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pull);
        // The abandoned download stops and its cleanup runs: the ingest is aborted and the store empties.
        await WaitForAsync(() => _content.ListIngestsAsync(default).GetAwaiter().GetResult().Count == 0 &&
                                 _content.WalkAsync(default).GetAwaiter().GetResult().Count == 0);
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_rejected_image_fetches_no_blob_and_stores_nothing()
    {
        var e = await Assert.ThrowsAsync<VerificationFailedException>(() => Puller(verifier: new RejectAll()).PullAsync(Name, null, null, default));
        Assert.Equal(("reject-all", Name), (e.Verifier, e.ImageName));
        Assert.DoesNotContain(_requests, r => r.Contains("/blobs/", StringComparison.Ordinal));
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task An_index_without_the_wanted_platform_is_NotFound_naming_it_and_nothing_is_kept()
    {
        var puller = new ImagePuller(_registry, _content, _snapshotter, _images, new LeaseManager(),
            new GarbageCollector(_content, _snapshotter, _images, new LeaseManager(), NullLogger.Instance), new AllowAll(), _deprecations,
            new PullOptions { Platforms = PlatformMatcher.Only(new Platform("linux", "s390x")) }, NullLogger.Instance);

        var e = await Assert.ThrowsAsync<HullException>(() => puller.PullAsync(Name, null, null, default));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains($"image \"{Name}\"", e.Message);
        Assert.Contains("linux/s390x", e.Message);
        await AssertNothingStoredAsync();
    }

    [Fact]
    public async Task A_pull_that_reuses_blobs_and_snapshots_a_running_collection_is_removing_gets_them_back()
    {
        // One collector for the puller and for removals, as in hulld; its deletions can be held up.
        var gate = new GatedContentStore(_content);
        var leases = new LeaseManager();
        var gc = new GarbageCollector(gate, _snapshotter, _images, leases, NullLogger.Instance);
        var puller = new ImagePuller(_registry, _content, _snapshotter, _images, leases, gc, new AllowAll(), _deprecations,
            new PullOptions { Platforms = PlatformMatcher.Only(new Platform("linux", "amd64")) }, NullLogger.Instance);
        var first = await puller.PullAsync(Name, null, null, default);

        // The image is removed; the collection that follows has marked everything dead and is about to delete it...
        await _images.DeleteAsync((await _images.ByIdAsync(first.Id, default)).Select(r => r.Name).ToArray(), default);
        gate.HoldDeletes();
        var removal = gc.CollectAsync(default);
        await gate.DeleteWaiting;
        // ...when the image is pulled again. It must not adopt what that collection is removing.
        var again = puller.PullAsync(Name, null, null, default);
        await Task.WhenAny(again, Task.Delay(500));
        gate.ReleaseDeletes();
        await removal;
        var second = await again;

        Assert.Equal(first.Id, second.Id);
        foreach (var digest in new[] { Image.Index, Image.For("amd64").Manifest, Image.For("amd64").Config, Image.Layer }.Select(b => b.Descriptor.Digest))
            Assert.NotNull(await _content.TryInfoAsync(digest, default));
        Assert.NotNull(await _snapshotter.TryStatAsync(second.ChainId, default));
        Assert.Equal(new GcResult(0, 0, 0), await gc.CollectAsync(default));
    }

    // ---- the fake registry ----------------------------------------------------------------------

    private async Task ServeAsync(HttpListenerContext context)
    {
        string path = context.Request.Url!.AbsolutePath;
        _requests.Enqueue($"{context.Request.HttpMethod} {path}");
        const string prefix = "/v2/hull/fake/";
        if (path == "/v2/")
        {
            await TestHttpServer.WriteAsync(context.Response, 200, "{}");
            return;
        }
        var blobs = new[] { Image.Index, Image.Layer, BrokenLayer, BrokenConfig, BrokenManifest, BigConfig, BigConfigManifest }
            .Concat(Image.Platforms.SelectMany(p => new[] { p.Config, p.Manifest }))
            .ToDictionary(b => b.Descriptor.Digest);
        var tags = new Dictionary<string, TestBlob> { ["1"] = Image.Index, ["broken"] = BrokenManifest, ["bigconfig"] = BigConfigManifest };
        string? reference = path.StartsWith(prefix + "manifests/", StringComparison.Ordinal) ? path[(prefix + "manifests/").Length..] : null;
        if (reference is not null && (tags.TryGetValue(reference, out var manifest) || blobs.TryGetValue(reference, out manifest)))
        {
            await TestHttpServer.WriteAsync(context.Response, 200, System.Text.Encoding.UTF8.GetString(manifest.Content), manifest.Descriptor.MediaType,
                ("Docker-Content-Digest", manifest.Descriptor.Digest));
            return;
        }
        if (path.StartsWith(prefix + "blobs/", StringComparison.Ordinal) && blobs.TryGetValue(path[(prefix + "blobs/").Length..], out var blob))
        {
            if (blob == Image.Layer)
            {
                int n = Interlocked.Increment(ref _layerGets);
                if (_layerFault is { } fault)
                {
                    await fault(context, n);
                    return;
                }
            }
            await WriteBlobAsync(context, blob.Content);
            return;
        }
        await TestHttpServer.WriteAsync(context.Response, 404, """{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}""");
    }

    /// <summary>Writes a blob, honouring a Range request as a registry does.</summary>
    private static async Task WriteBlobAsync(HttpListenerContext context, byte[] content)
    {
        long from = 0;
        if (context.Request.Headers["Range"] is { } range && RangeHeaderValue.TryParse(range, out var parsed) && parsed.Ranges.First().From is { } start)
        {
            from = start;
            context.Response.StatusCode = 206;
            context.Response.AddHeader("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}");
        }
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength64 = content.Length - from;
        await context.Response.OutputStream.WriteAsync(content.AsMemory((int)from));
        context.Response.Close();
    }

    /// <summary>Announces the whole blob, sends <paramref name="bytes"/> of it and resets the connection.</summary>
    private static async Task CutAsync(HttpListenerContext context, int bytes)
    {
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength64 = Image.Layer.Content.Length;
        await context.Response.OutputStream.WriteAsync(Image.Layer.Content.AsMemory(0, bytes));
        await context.Response.OutputStream.FlushAsync();
        context.Response.Abort();
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(10);
        }
    }

    /// <summary>A content store whose deletions can be made to wait, to stop a collection between its mark and its sweep.</summary>
    private sealed class GatedContentStore(ContentStore inner) : IContentStore
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource? _hold;

        /// <summary>Completes when a deletion is waiting.</summary>
        public Task DeleteWaiting => _waiting.Task;

        public void HoldDeletes() => _hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ReleaseDeletes() => _hold?.TrySetResult();

        public async Task DeleteAsync(string digest, CancellationToken cancellationToken)
        {
            if (_hold is { } hold)
            {
                _waiting.TrySetResult();
                await hold.Task.WaitAsync(cancellationToken);
            }
            await inner.DeleteAsync(digest, cancellationToken);
        }

        public Task<ContentInfo> InfoAsync(string digest, CancellationToken cancellationToken) => inner.InfoAsync(digest, cancellationToken);
        public Task<ContentInfo?> TryInfoAsync(string digest, CancellationToken cancellationToken) => inner.TryInfoAsync(digest, cancellationToken);
        public Task<IReadOnlyList<ContentInfo>> WalkAsync(CancellationToken cancellationToken) => inner.WalkAsync(cancellationToken);
        public Task<Stream> OpenReadAsync(string digest, CancellationToken cancellationToken) => inner.OpenReadAsync(digest, cancellationToken);
        public Task<ContentInfo> SetLabelsAsync(string digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken) =>
            inner.SetLabelsAsync(digest, labels, cancellationToken);
        public Task<ContentWriter> OpenWriterAsync(string ingestRef, Descriptor expected, CancellationToken cancellationToken) =>
            inner.OpenWriterAsync(ingestRef, expected, cancellationToken);
        public Task<IReadOnlyList<IngestStatus>> ListIngestsAsync(CancellationToken cancellationToken) => inner.ListIngestsAsync(cancellationToken);
        public Task AbortAsync(string ingestRef, CancellationToken cancellationToken) => inner.AbortAsync(ingestRef, cancellationToken);
    }

    private sealed class AllowAll : IImageVerifier
    {
        public Task<Judgement> VerifyAsync(string imageName, Descriptor manifest, CancellationToken ct) => Task.FromResult(new Judgement(true, "ok"));
    }

    private sealed class RejectAll : IImageVerifier
    {
        public Task<Judgement> VerifyAsync(string imageName, Descriptor manifest, CancellationToken ct) =>
            Task.FromResult(new Judgement(false, "no") { Verifier = "reject-all", VerifierReason = "not signed" });
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; this reports on the caller's thread, so nothing arrives late.</summary>
    private sealed class SyncProgress(Action<PullProgress> report) : IProgress<PullProgress>
    {
        public void Report(PullProgress value) => report(value);
    }
}
