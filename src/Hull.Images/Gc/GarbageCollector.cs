using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Oci;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Gc;

/// <summary>What one collection removed.</summary>
public sealed record GcResult(int ContentRemoved, long BytesRemoved, int SnapshotsRemoved);

/// <summary>
/// Mark and sweep over content and snapshots, like containerd's metadata GC: roots are image names,
/// leases and the snapshots containers use; everything else goes. Each removal is crash-safe on its
/// own, and a collection is idempotent, so running it at startup finishes one a crash interrupted.
/// </summary>
/// <param name="snapshotRoots">Snapshot keys in use outside the image store (containers' writable snapshots, pods' pause-image snapshots).</param>
public sealed class GarbageCollector(
    IContentStore content,
    ISnapshotter snapshotter,
    ImageStore images,
    LeaseManager leases,
    ILogger logger,
    Func<CancellationToken, Task<IReadOnlyCollection<string>>>? snapshotRoots = null)
{
    private const string ExtractPrefix = "extract-";
    private readonly SemaphoreSlim _running = new(1, 1);

    /// <summary>
    /// Waits for the collection in progress, if any, to finish. A collection reads the leases once, before it
    /// sweeps; one that read them before a resource was leased may still remove it. So an operation that leases
    /// something that already exists (a pull finding a blob or snapshot present) calls this after leasing and
    /// before relying on it: any collection still running then has finished, and every later one sees the lease.
    /// </summary>
    public async Task WaitForRunningCollectionAsync(CancellationToken cancellationToken)
    {
        await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        _running.Release();
    }

    public async Task<GcResult> CollectAsync(CancellationToken cancellationToken)
    {
        await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Order matters: list what exists first, then read the roots. Anything created after the
            // listing is not swept; anything listed was leased before it was created.
            var blobs = await content.WalkAsync(cancellationToken).ConfigureAwait(false);
            var snapshots = await snapshotter.WalkAsync(cancellationToken).ConfigureAwait(false);
            var (leasedContent, leasedChains) = leases.Snapshot();
            var records = await images.ListAsync(cancellationToken).ConfigureAwait(false);
            var externalRoots = snapshotRoots is null ? [] : await snapshotRoots(cancellationToken).ConfigureAwait(false);

            var liveContent = await MarkContentAsync(records, leasedContent, cancellationToken).ConfigureAwait(false);
            var liveSnapshots = MarkSnapshots(snapshots, records, leasedChains, externalRoots);

            int contentRemoved = 0;
            long bytes = 0;
            foreach (var blob in blobs.Where(b => !liveContent.Contains(b.Digest)))
            {
                await content.DeleteAsync(blob.Digest, cancellationToken).ConfigureAwait(false);
                contentRemoved++;
                bytes += blob.Size;
            }
            int snapshotsRemoved = await SweepSnapshotsAsync(snapshots, liveSnapshots, cancellationToken).ConfigureAwait(false);
            if (contentRemoved + snapshotsRemoved > 0)
                logger.LogInformation("garbage collection removed {Blobs} blobs ({Bytes} bytes) and {Snapshots} snapshots",
                    contentRemoved, bytes, snapshotsRemoved);
            return new GcResult(contentRemoved, bytes, snapshotsRemoved);
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<HashSet<string>> MarkContentAsync(IReadOnlyList<ImageRecord> records, HashSet<string> leased, CancellationToken ct)
    {
        var live = new HashSet<string>(leased, StringComparer.Ordinal);
        var pending = new Queue<Descriptor>();
        foreach (var r in records)
        {
            pending.Enqueue(r.Target);
            live.Add(r.ManifestDigest);
            live.Add(r.ConfigDigest);
        }
        while (pending.TryDequeue(out var d))
        {
            live.Add(d.Digest);
            if (!ManifestDocument.IsIndexType(d.MediaType) && !ManifestDocument.IsImageManifestType(d.MediaType)) continue;
            if (await content.TryInfoAsync(d.Digest, ct).ConfigureAwait(false) is null) continue;
            byte[] bytes;
            await using (var stream = await content.OpenReadAsync(d.Digest, ct).ConfigureAwait(false))
            {
                using var buffer = new MemoryStream();
                await stream.CopyToAsync(buffer, ct).ConfigureAwait(false);
                bytes = buffer.ToArray();
            }
            switch (ManifestDocument.Parse(bytes, d.MediaType, d.Digest))
            {
                case ImageIndex index:
                    foreach (var m in index.Manifests) pending.Enqueue(m);
                    break;
                case ImageManifest manifest:
                    live.Add(manifest.Config.Digest);
                    foreach (var l in manifest.Layers) live.Add(l.Digest);
                    break;
            }
        }
        return live;
    }

    private static HashSet<string> MarkSnapshots(IReadOnlyList<SnapshotInfo> snapshots, IReadOnlyList<ImageRecord> records,
        HashSet<string> leasedChains, IReadOnlyCollection<string> externalRoots)
    {
        var byKey = snapshots.ToDictionary(s => s.Key, StringComparer.Ordinal);
        var live = new HashSet<string>(StringComparer.Ordinal);
        void MarkWithAncestors(string? key)
        {
            while (key is not null && byKey.TryGetValue(key, out var s) && live.Add(key)) key = s.Parent;
        }
        foreach (var r in records) MarkWithAncestors(r.ChainId);
        foreach (var chain in leasedChains) MarkWithAncestors(chain);
        foreach (var root in externalRoots) MarkWithAncestors(root);
        foreach (var s in snapshots)
        {
            // An extraction in progress lives while its pull holds the chain it builds.
            if (s.Key.StartsWith(ExtractPrefix, StringComparison.Ordinal))
            {
                if (leasedChains.Any(c => s.Key.EndsWith("-" + c, StringComparison.Ordinal))) MarkWithAncestors(s.Key);
            }
        }
        return live;
    }

    /// <summary>Removes unmarked snapshots leaves first, so no removal is refused for having children.</summary>
    private async Task<int> SweepSnapshotsAsync(IReadOnlyList<SnapshotInfo> snapshots, HashSet<string> live, CancellationToken ct)
    {
        var dead = snapshots.Where(s => !live.Contains(s.Key)).ToList();
        int removed = 0;
        while (dead.Count > 0)
        {
            var parents = dead.Select(s => s.Parent).Where(p => p is not null).ToHashSet(StringComparer.Ordinal);
            var leaves = dead.Where(s => !parents.Contains(s.Key)).ToList();
            if (leaves.Count == 0) break;
            foreach (var leaf in leaves)
            {
                try
                {
                    await snapshotter.RemoveAsync(leaf.Key, ct).ConfigureAwait(false);
                    removed++;
                }
                catch (HullException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.FailedPrecondition)
                {
                    // Gone already, or a live snapshot was created on top of it since the walk.
                    logger.LogDebug("garbage collection skipped snapshot {Key}: {Reason}", leaf.Key, e.Message);
                }
                dead.Remove(leaf);
            }
        }
        return removed;
    }
}
