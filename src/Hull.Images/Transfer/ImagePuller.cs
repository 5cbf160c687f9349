using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Unpack;
using Hull.Images.Verifiers;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Transfer;

public sealed record PullOptions
{
    public int MaxConcurrentDownloads { get; init; } = 3;
    /// <summary>Zero disables the stall check.</summary>
    public TimeSpan ProgressTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public PlatformMatcher Platforms { get; init; } = PlatformMatcher.Default;
    /// <summary>Normalised names whose images are pinned (pinned_images).</summary>
    public IReadOnlySet<string> PinnedNames { get; init; } = new HashSet<string>();
}

/// <summary>
/// Registry → content store → snapshots → image store. Layers download in parallel; each is unpacked
/// as soon as it and its parents are there, streamed straight from the network into the snapshot when
/// its parent is already done. A failed pull leaves nothing behind: its lease goes and a collection
/// removes what it had written.
/// </summary>
public sealed class ImagePuller(
    RegistryClient registry,
    ContentStore content,
    ISnapshotter snapshotter,
    ImageStore images,
    LeaseManager leases,
    GarbageCollector gc,
    IImageVerifier verifier,
    DeprecationRegistry deprecations,
    PullOptions options,
    ILogger logger)
{
    private readonly Dictionary<string, SharedPull> _inFlight = new(StringComparer.Ordinal);
    private readonly LayerUnpacker _unpacker = new(snapshotter);
    private readonly ContentStore _content = content;
    private readonly ISnapshotter _snapshotter = snapshotter;
    private readonly PullOptions _options = options;

    /// <summary>
    /// Pulls <paramref name="reference"/> and returns its record. Concurrent pulls of the same name with
    /// the same credentials share one download; the pull is abandoned (and cleaned up) only when every
    /// caller waiting for it has gone.
    /// </summary>
    public async Task<ImageRecord> PullAsync(string reference, RegistryCredentials? credentials, IProgress<PullProgress>? progress,
        CancellationToken cancellationToken)
    {
        var image = ImageReference.ParseDockerRef(reference);
        string key = $"{image}\n{credentials}";
        SharedPull pull;
        lock (_inFlight)
        {
            if (!_inFlight.TryGetValue(key, out pull!) || pull.Abandoning)
            {
                pull = new SharedPull();
                pull.Task = RunSharedAsync(image, credentials, progress, key, pull);
                _inFlight[key] = pull;
            }
            pull.Waiters++;
        }
        try
        {
            return await pull.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            bool abandon;
            lock (_inFlight) abandon = pull.Abandoning = --pull.Waiters == 0 && !pull.Task.IsCompleted;
            if (abandon) await pull.Abandoned.CancelAsync().ConfigureAwait(false);
        }
    }

    private async Task<ImageRecord> RunSharedAsync(ImageReference image, RegistryCredentials? credentials, IProgress<PullProgress>? progress, string key,
        SharedPull pull)
    {
        await Task.Yield();
        try
        {
            return await PullOnceAsync(image, credentials, progress, pull.Abandoned.Token).ConfigureAwait(false);
        }
        finally
        {
            lock (_inFlight)
            {
                if (_inFlight.TryGetValue(key, out var current) && current == pull) _inFlight.Remove(key);
            }
        }
    }

    /// <summary>One download shared by every caller pulling the same name with the same credentials.</summary>
    private sealed class SharedPull
    {
        public Task<ImageRecord> Task = null!;
        public readonly CancellationTokenSource Abandoned = new();
        public int Waiters;
        /// <summary>Every waiter left; callers arriving now start a new pull instead of joining this one.</summary>
        public bool Abandoning;
    }

    private async Task<ImageRecord> PullOnceAsync(ImageReference image, RegistryCredentials? credentials, IProgress<PullProgress>? progress,
        CancellationToken abandoned)
    {
        string name = image.ToString();
        using var activity = ImagesTelemetry.Source.StartActivity("PullImage");
        activity?.SetTag("image.name", name);
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var watchdog = new StallWatchdog(_options.ProgressTimeout);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(watchdog.Token, abandoned);
        var report = new Progress(name, progress, watchdog);
        bool succeeded = false;
        var lease = leases.Create($"pull {name}");
        try
        {
            var record = await PullLeasedAsync(image, credentials, lease, report, stop.Token).ConfigureAwait(false);
            succeeded = true;
            return record;
        }
        catch (OperationCanceledException) when (watchdog.Stalled)
        {
            throw new HullException(ErrorKind.DeadlineExceeded,
                $"pull of image \"{name}\" made no progress for {watchdog.Limit.TotalSeconds:0.#} s (image_pull_progress_timeout)");
        }
        catch (Schema1ImageException e)
        {
            deprecations.Record(e.DeprecationId);
            throw;
        }
        catch (HullException e) when (!e.Message.Contains($"\"{name}\"", StringComparison.Ordinal))
        {
            // Content, unpack and download errors name the blob or layer; the kubelet also needs the image.
            throw new HullException(e.Kind, $"image \"{name}\": {e.Message}", e);
        }
        finally
        {
            ImagesTelemetry.PullEnded(succeeded, started);
            if (!succeeded) activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error);
            lease.Dispose();
            await CollectAsync(name, succeeded).ConfigureAwait(false);
        }
    }

    private async Task CollectAsync(string name, bool succeeded)
    {
        try
        {
            await gc.CollectAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The image is fine (or the pull already failed for a better reason); the next collection retries.
            logger.LogWarning(e, "garbage collection after {Outcome} pull of {Image} failed", succeeded ? "a" : "a failed", name);
        }
    }

    private async Task<ImageRecord> PullLeasedAsync(ImageReference image, RegistryCredentials? credentials, Lease lease, Progress report,
        CancellationToken ct)
    {
        string name = image.ToString();
        var repo = registry.Repository(image, credentials);
        report.Step("", "manifest", PullPhase.Resolving, 0, 0);
        FetchedManifest top;
        using (ImagesTelemetry.Source.StartActivity("resolve"))
            top = await repo.ResolveAsync(ct).ConfigureAwait(false);
        await verifier.EnsureAllowedAsync(name, top.Descriptor, ct).ConfigureAwait(false);
        lease.AddContent(top.Digest);
        await gc.WaitForRunningCollectionAsync(ct).ConfigureAwait(false); // leased content found present stays present
        await StoreBytesAsync(top.Descriptor, top.Content, ct).ConfigureAwait(false);

        var manifestDescriptor = top.Descriptor;
        var document = top.Parse(name);
        if (document is ImageIndex index)
        {
            manifestDescriptor = _options.Platforms.Select(index.Manifests) ?? throw new HullException(ErrorKind.NotFound,
                $"image \"{name}\" has no manifest for platform {_options.Platforms.Preference[0]} " +
                $"(it has {string.Join(", ", index.Manifests.Select(m => m.Platform?.ToString() ?? "unknown"))})");
            lease.AddContent(manifestDescriptor.Digest);
            await gc.WaitForRunningCollectionAsync(ct).ConfigureAwait(false);
            var platformManifest = await repo.FetchManifestAsync(manifestDescriptor.Digest, ct).ConfigureAwait(false);
            await StoreBytesAsync(platformManifest.Descriptor, platformManifest.Content, ct).ConfigureAwait(false);
            document = platformManifest.Parse(name);
            manifestDescriptor = platformManifest.Descriptor;
        }
        if (document is not ImageManifest manifest)
            throw new HullException(ErrorKind.InvalidArgument, $"image \"{name}\": {manifestDescriptor.Digest} is not an image manifest");

        lease.AddContent(manifest.Config.Digest);
        await gc.WaitForRunningCollectionAsync(ct).ConfigureAwait(false);
        // The config is read whole: refuse a large one by its descriptor before downloading (the store checks the size matches).
        if (manifest.Config.Size > ImageConfig.MaxSize)
            throw new HullException(ErrorKind.InvalidArgument,
                $"image \"{name}\": config {manifest.Config.Digest} is {manifest.Config.Size} bytes, more than the {ImageConfig.MaxSize} Hull reads");
        var configBytes = await FetchSmallBlobAsync(repo, manifest.Config, ct).ConfigureAwait(false);
        var config = ImageConfig.Parse(configBytes, name);
        if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
            throw new HullException(ErrorKind.InvalidArgument,
                $"image \"{name}\": the config lists {config.RootFs.DiffIds.Count} layers but the manifest has {manifest.Layers.Count}");

        var chains = new string[manifest.Layers.Count];
        string? parent = null;
        for (int i = 0; i < chains.Length; i++)
        {
            chains[i] = parent = ChainIds.Next(parent, config.RootFs.DiffIds[i]);
            lease.AddChain(chains[i]);
            lease.AddContent(manifest.Layers[i].Digest);
        }
        await gc.WaitForRunningCollectionAsync(ct).ConfigureAwait(false); // before the pipeline relies on snapshots and blobs it finds
        await new LayerPipeline(this, repo, manifest.Layers, config.RootFs.DiffIds, chains, report, ct).RunAsync().ConfigureAwait(false);

        var now = DateTimeOffset.UtcNow;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new List<string> { name };
        var digestName = image.WithoutObject().WithDigest(top.Digest).ToString();
        if (digestName != name) names.Add(digestName);
        if (names.Any(_options.PinnedNames.Contains)) labels[ImageLabels.Pinned] = "pinned";
        long size = manifest.Config.Size + manifest.Layers.Sum(l => l.Size);
        var records = names.Select(n => new ImageRecord(n, top.Descriptor, manifestDescriptor.Digest, manifest.Config.Digest,
            chains[^1], _snapshotter.Name, size, labels, now, now)).ToArray();
        await images.PutAsync(records, ct).ConfigureAwait(false);
        report.Step(top.Digest, "image", PullPhase.Done, size, size);
        logger.LogInformation("pulled {Image} ({Id}, {Layers} layers, {Size} bytes)", name, manifest.Config.Digest, chains.Length, size);
        return records[0];
    }

    /// <summary>Stores bytes already fetched (and digest-checked by the registry client) as a blob.</summary>
    private async Task StoreBytesAsync(Descriptor descriptor, byte[] bytes, CancellationToken ct)
    {
        if (await _content.TryInfoAsync(descriptor.Digest, ct).ConfigureAwait(false) is not null) return;
        try
        {
            await using var writer = await _content.OpenWriterAsync($"fetch-{descriptor.Digest}", descriptor, ct).ConfigureAwait(false);
            if (writer.Offset > 0) await writer.ResetAsync(ct).ConfigureAwait(false);
            await writer.WriteAsync(bytes, ct).ConfigureAwait(false);
            await writer.CommitAsync(null, ct).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.AlreadyExists) { }
    }

    private async Task<byte[]> FetchSmallBlobAsync(RegistryRepository repo, Descriptor descriptor, CancellationToken ct)
    {
        await DownloadAsync(repo, descriptor, null, ct).ConfigureAwait(false);
        return await ImageContentTree.ReadAllAsync(_content, descriptor.Digest, ImageConfig.MaxSize, ct).ConfigureAwait(false);
    }

    /// <summary>Downloads a blob into the content store, resuming an ingest a dropped connection left behind.</summary>
    private async Task DownloadAsync(RegistryRepository repo, Descriptor descriptor, IProgress<long>? progress, CancellationToken ct)
    {
        if (await _content.TryInfoAsync(descriptor.Digest, ct).ConfigureAwait(false) is not null) return;
        ContentWriter writer;
        try
        {
            writer = await _content.OpenWriterAsync($"fetch-{descriptor.Digest}", descriptor, ct).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            return; // another pull finished it while this one waited for the ingest
        }
        await using (writer)
        {
            try
            {
                await using var body = new RegistryBodyStream(
                    await repo.FetchBlobAsync(descriptor, writer.Offset, progress, ct).ConfigureAwait(false), descriptor.Digest, ct);
                await body.CopyToAsync(writer, 128 * 1024, ct).ConfigureAwait(false);
                await writer.CommitAsync(null, ct).ConfigureAwait(false);
            }
            catch
            {
                await writer.AbortAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>The per-layer part of one pull: bounded parallel downloads, in-order unpacks.</summary>
    private sealed class LayerPipeline(ImagePuller puller, RegistryRepository repo, IReadOnlyList<Descriptor> layers,
        IReadOnlyList<string> diffIds, string[] chains, Progress report, CancellationToken ct)
    {
        private readonly TaskCompletionSource[] _unpacked = layers.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        private readonly SemaphoreSlim _downloads = new(Math.Max(1, puller._options.MaxConcurrentDownloads));

        public async Task RunAsync()
        {
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var tasks = Enumerable.Range(0, layers.Count).Select(i => RunLayerAsync(i, failed)).ToArray();
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch
            {
                // Report the first real failure, not the cancellations it caused in sibling layers.
                var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!)
                    .FirstOrDefault(e => e is not OperationCanceledException);
                if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
                throw;
            }
        }

        private async Task RunLayerAsync(int i, CancellationTokenSource failed)
        {
            try
            {
                await RunLayerCoreAsync(i, failed.Token).ConfigureAwait(false);
                _unpacked[i].TrySetResult();
            }
            catch (Exception e)
            {
                _unpacked[i].TrySetException(e);
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        private async Task RunLayerCoreAsync(int i, CancellationToken token)
        {
            var layer = layers[i];
            using var activity = ImagesTelemetry.Source.StartActivity("layer");
            activity?.SetTag("oci.layer.digest", layer.Digest);
            activity?.SetTag("oci.layer.size", layer.Size);
            if (await puller._snapshotter.TryStatAsync(chains[i], token).ConfigureAwait(false) is not null)
            {
                report.Step(layer.Digest, "layer", PullPhase.AlreadyPresent, layer.Size, layer.Size);
                return;
            }
            report.Step(layer.Digest, "layer", PullPhase.Waiting, 0, layer.Size);
            bool unpacked = false;
            await _downloads.WaitAsync(token).ConfigureAwait(false);
            try
            {
                var bytes = new Progress<long>(n => report.Step(layer.Digest, "layer", PullPhase.Downloading, n, layer.Size));
                bool parentReady = i == 0 || _unpacked[i - 1].Task.IsCompletedSuccessfully;
                if (parentReady && await puller._content.TryInfoAsync(layer.Digest, token).ConfigureAwait(false) is null)
                    unpacked = await StreamAndUnpackAsync(i, bytes, token).ConfigureAwait(false);
                if (!unpacked)
                {
                    using var fetch = ImagesTelemetry.Source.StartActivity("fetch");
                    await puller.DownloadAsync(repo, layer, bytes, token).ConfigureAwait(false);
                }
                report.Step(layer.Digest, "layer", PullPhase.Downloaded, layer.Size, layer.Size);
            }
            finally
            {
                _downloads.Release();
            }
            if (unpacked) return;
            if (i > 0) await _unpacked[i - 1].Task.WaitAsync(token).ConfigureAwait(false);
            report.Step(layer.Digest, "layer", PullPhase.Unpacking, layer.Size, layer.Size);
            await using var stream = await puller._content.OpenReadAsync(layer.Digest, token).ConfigureAwait(false);
            await UnpackAsync(stream, i, "unpack", token).ConfigureAwait(false);
            report.Step(layer.Digest, "layer", PullPhase.Done, layer.Size, layer.Size);
        }

        /// <summary>Unpacks layer <paramref name="i"/> from <paramref name="stream"/> onto its parent, timed and counted.</summary>
        private async Task UnpackAsync(Stream stream, int i, string spanName, CancellationToken token)
        {
            using var activity = ImagesTelemetry.Source.StartActivity(spanName);
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            await puller._unpacker.UnpackAsync(stream, layers[i], i == 0 ? null : chains[i - 1], diffIds[i], token).ConfigureAwait(false);
            ImagesTelemetry.UnpackDuration.Record(Hull.Core.Telemetry.MetricConventions.SecondsSince(started));
            ImagesTelemetry.UnpackedBytes.Add(layers[i].Size);
        }

        /// <summary>
        /// Network → (content ingest + decompress → untar) in one pass. Returns false when the layer's
        /// ingest is held by another pull; the caller then waits for the blob and unpacks from it.
        /// </summary>
        private async Task<bool> StreamAndUnpackAsync(int i, IProgress<long> bytes, CancellationToken token)
        {
            var layer = layers[i];
            ContentWriter writer;
            try
            {
                writer = await puller._content.OpenWriterAsync($"fetch-{layer.Digest}", layer, token).ConfigureAwait(false);
            }
            catch (HullException e) when (e.Kind == ErrorKind.AlreadyExists)
            {
                return false;
            }
            await using (writer)
            {
                if (writer.Offset > 0) return false; // resume the partial ingest through the download path
                try
                {
                    await using var body = new RegistryBodyStream(await repo.FetchBlobAsync(layer, 0, bytes, token).ConfigureAwait(false), layer.Digest, token);
                    await using var tee = new TeeReadStream(body, writer);
                    report.Step(layer.Digest, "layer", PullPhase.Unpacking, 0, layer.Size);
                    try
                    {
                        await UnpackAsync(tee, i, "fetch and unpack", token).ConfigureAwait(false);
                    }
                    catch (HullException e) when (e.Kind is ErrorKind.InvalidArgument or ErrorKind.FailedPrecondition && !token.IsCancellationRequested)
                    {
                        // A layer that will not decompress or untar, or has the wrong DiffID, may just have been corrupted on
                        // the way. Unpacking streams ahead of the digest check, so finish the download: if the bytes are not
                        // the blob the manifest names, the commit reports the digest mismatch, which is the real cause.
                        if (await CheckRestOfBlobAsync(tee, writer, token).ConfigureAwait(false) is { } mismatch) throw mismatch;
                        throw;
                    }
                    await tee.CopyToAsync(Stream.Null, token).ConfigureAwait(false); // the tar may end before the blob does
                    await writer.CommitAsync(null, token).ConfigureAwait(false);
                }
                catch
                {
                    await writer.AbortAsync().ConfigureAwait(false);
                    throw;
                }
            }
            report.Step(layer.Digest, "layer", PullPhase.Done, layer.Size, layer.Size);
            return true;
        }
    }

    /// <summary>
    /// The body of a blob download. A read that fails once the registry client's resumes are used up is the
    /// registry's (or the network's) failure, Unavailable naming the blob, not a local I/O error of whatever
    /// consumes the stream (the unpacker reports its own I/O errors as Internal).
    /// </summary>
    private sealed class RegistryBodyStream(Stream inner, string digest, CancellationToken pullToken) : Stream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                int read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                ImagesTelemetry.FetchedBytes.Add(read);
                return read;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested && !pullToken.IsCancellationRequested)
            {
                throw new HullException(ErrorKind.Unavailable, $"downloading blob \"{digest}\" failed: {e.Message}", e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// After a failed streaming unpack: reads the rest of the blob into its ingest and commits it. Returns the size or
    /// digest mismatch when the bytes are not the blob; null when they are (the layer itself is bad) or when the rest
    /// cannot be fetched (then the unpack error stands).
    /// </summary>
    private static async Task<HullException?> CheckRestOfBlobAsync(Stream tee, ContentWriter writer, CancellationToken token)
    {
        try
        {
            await tee.CopyToAsync(Stream.Null, token).ConfigureAwait(false);
            await writer.CommitAsync(null, token).ConfigureAwait(false);
            return null;
        }
        catch (HullException e)
        {
            return e.Kind == ErrorKind.FailedPrecondition ? e : null;
        }
    }

    /// <summary>Forwards progress to the caller and keeps the stall watchdog fed.</summary>
    private sealed class Progress(string image, IProgress<PullProgress>? sink, StallWatchdog watchdog)
    {
        public void Step(string digest, string kind, PullPhase phase, long bytes, long total)
        {
            watchdog.Touch();
            sink?.Report(new PullProgress(image, digest, kind, phase, bytes, total));
        }
    }
}
