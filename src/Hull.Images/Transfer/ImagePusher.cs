using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Store;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Transfer;

public sealed record PushOptions
{
    /// <summary>Blobs uploaded at once (max_concurrent_uploaded_layers of the transfer service).</summary>
    public int MaxConcurrentUploads { get; init; } = 3;
}

/// <summary>
/// Image store → registry: configs and layers first (in parallel, skipping those the registry has),
/// then the manifests, children before the index over them, the root last under the target's tag.
/// Sends the whole index when all its children are in the content store, else the platform manifest
/// that was pulled. Reads only the content store; the image store and snapshots are not touched.
/// </summary>
public sealed class ImagePusher(RegistryClient registry, IContentStore content, LeaseManager leases, PushOptions options, ILogger logger)
{
    public async Task<PushResult> PushAsync(ImageRecord source, ImageReference target, RegistryCredentials? credentials,
        IProgress<TransferProgress>? progress, CancellationToken cancellationToken)
    {
        string name = target.ToString();
        using var lease = leases.Create($"push {name}");
        foreach (var digest in new[] { source.Target.Digest, source.ManifestDigest, source.ConfigDigest }) lease.AddContent(digest);
        var tree = await ImageContentTree.ResolveAsync(content, source, cancellationToken).ConfigureAwait(false);
        foreach (var (d, _) in tree.Manifests) lease.AddContent(d.Digest);
        foreach (var (d, _) in tree.Blobs) lease.AddContent(d.Digest);

        var repo = registry.Repository(target, credentials);
        void Report(string digest, string kind, TransferPhase phase, long bytes, long total) =>
            progress?.Report(new TransferProgress(name, digest, kind, phase, bytes, total));

        foreach (var (d, kind) in tree.Blobs) Report(d.Digest, kind, TransferPhase.Waiting, 0, d.Size);
        int uploaded = 0;
        using var slots = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentUploads));
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = tree.Blobs.Select(b => PushBlobAsync(b.Descriptor, b.Kind)).ToArray();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            // The first real failure, not the cancellations it caused in the other uploads.
            var first = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }

        foreach (var (d, bytes) in tree.Manifests)
        {
            string kind = ManifestDocument.IsIndexType(d.MediaType) ? "index" : "manifest";
            bool isRoot = d.Digest == tree.Root.Digest;
            string reference = isRoot ? target.Digest ?? target.Tag ?? ImageReference.DefaultTag : d.Digest;
            Report(d.Digest, kind, TransferPhase.Uploading, 0, d.Size);
            await repo.PushManifestAsync(reference, bytes, d.MediaType, cancellationToken).ConfigureAwait(false);
            Report(d.Digest, kind, TransferPhase.Uploaded, d.Size, d.Size);
        }
        long size = tree.Blobs.Sum(b => b.Descriptor.Size);
        Report(tree.Root.Digest, "image", TransferPhase.Done, size, size);
        logger.LogInformation("pushed {Image} as {Target} ({Root}, {Uploaded} blobs uploaded, {Skipped} already there)",
            source.Name, name, tree.Root.Digest, uploaded, tree.Blobs.Count - uploaded);
        return new PushResult(name, tree.Root, tree.ConfigDigest, uploaded, tree.Blobs.Count - uploaded);

        async Task PushBlobAsync(Descriptor blob, string kind)
        {
            try
            {
                await slots.WaitAsync(failed.Token).ConfigureAwait(false);
                try
                {
                    Report(blob.Digest, kind, TransferPhase.Uploading, 0, blob.Size);
                    await using var stream = await content.OpenReadAsync(blob.Digest, failed.Token).ConfigureAwait(false);
                    await using var counted = new ProgressReadStream(stream, n => Report(blob.Digest, kind, TransferPhase.Uploading, n, blob.Size));
                    bool sent = await repo.PushBlobAsync(blob, counted, failed.Token).ConfigureAwait(false);
                    if (sent) Interlocked.Increment(ref uploaded);
                    Report(blob.Digest, kind, sent ? TransferPhase.Uploaded : TransferPhase.AlreadyPresent, blob.Size, blob.Size);
                }
                finally
                {
                    slots.Release();
                }
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }
}
