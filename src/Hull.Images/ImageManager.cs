using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Transfer;

namespace Hull.Images;

/// <summary>An image as the kubelet sees it: one ID (the config digest) with all its names.</summary>
public sealed record ImageSummary(string Id, IReadOnlyList<string> RepoTags, IReadOnlyList<string> RepoDigests, long Size, bool Pinned,
    string ChainId, string ManifestDigest, string Snapshotter);

/// <summary>Filesystem usage for ImageFsInfo.</summary>
public sealed record ImageFsUsage(string Mountpoint, long UsedBytes, long InodesUsed, DateTimeOffset Timestamp);

/// <summary>
/// The images of this node: look-ups by name, ID or digest, pulls, removal and usage. The one place
/// that knows how a CRI image spec maps to image-store names.
/// </summary>
/// <param name="imageUser">
/// What uses an image (by ID) so that it must not be removed (a container mounting it as an image volume), named for
/// the error; null when nothing does. The lifecycle above this library answers it.
/// </param>
public sealed class ImageManager(ImageStore store, ContentStore content, ISnapshotter snapshotter, ImagePuller puller, GarbageCollector gc,
    string snapshotRoot, Func<string, CancellationToken, Task<string?>>? imageUser = null)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ImageConfig> _configs = new(StringComparer.Ordinal);

    public Task<ImageRecord> PullAsync(string reference, RegistryCredentials? credentials, IProgress<PullProgress>? progress,
        CancellationToken cancellationToken) => puller.PullAsync(reference, credentials, progress, cancellationToken);

    public async Task<IReadOnlyList<ImageSummary>> ListAsync(CancellationToken cancellationToken) =>
        Summarise(await store.ListAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Finds an image by name (normalised like the kubelet: <c>busybox</c> → docker.io/library/busybox:latest),
    /// by digest reference, or by ID (<c>sha256:…</c>, with or without the algorithm). Null when absent.
    /// </summary>
    public async Task<ImageSummary?> FindAsync(string spec, CancellationToken cancellationToken)
    {
        var all = await store.ListAsync(cancellationToken).ConfigureAwait(false);
        string? id = AsId(spec);
        if (id is not null)
        {
            var byId = all.Where(r => r.ConfigDigest == id).ToArray();
            if (byId.Length > 0) return Summarise(byId)[0];
        }
        if (!ImageReference.TryParseDockerRef(spec, out var reference)) return null;
        var record = all.FirstOrDefault(r => r.Name == reference.ToString());
        return record is null ? null : Summarise(all.Where(r => r.ConfigDigest == record.ConfigDigest).ToArray())[0];
    }

    /// <summary>
    /// The image-store record <paramref name="spec"/> names, for transfers that need the name's target:
    /// the record of that name, or for an ID the image's first name by tag (else by digest). Null when absent.
    /// </summary>
    public async Task<ImageRecord?> FindRecordAsync(string spec, CancellationToken cancellationToken)
    {
        var all = await store.ListAsync(cancellationToken).ConfigureAwait(false);
        string? id = AsId(spec);
        if (id is not null && all.Where(r => r.ConfigDigest == id).OrderBy(r => r.Name.Contains('@')).ThenBy(r => r.Name, StringComparer.Ordinal)
                .FirstOrDefault() is { } byId)
            return byId;
        if (!ImageReference.TryParseDockerRef(spec, out var reference)) return null;
        return all.FirstOrDefault(r => r.Name == reference.ToString());
    }

    /// <summary>The image's runtime config, read from the content store.</summary>
    public async Task<ImageConfig> ConfigAsync(ImageSummary image, CancellationToken cancellationToken)
    {
        // The ID is the config's digest, so a parsed config never goes stale: ListImages, which the kubelet
        // calls periodically, must not re-read every config blob.
        if (_configs.TryGetValue(image.Id, out var cached)) return cached;
        var config = await ReadConfigAsync(image, cancellationToken).ConfigureAwait(false);
        _configs[image.Id] = config;
        return config;
    }

    private async Task<ImageConfig> ReadConfigAsync(ImageSummary image, CancellationToken cancellationToken)
    {
        await using var stream = await content.OpenReadAsync(image.Id, cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return ImageConfig.Parse(buffer.ToArray(), image.RepoTags.FirstOrDefault() ?? image.Id);
    }

    /// <summary>
    /// Removes every name of the image <paramref name="spec"/> refers to (as containerd's CRI does), then
    /// collects what nothing references any more. Removing an absent image succeeds; removing one a container
    /// mounts as an image volume is FailedPrecondition naming the container.
    /// </summary>
    public async Task<bool> RemoveAsync(string spec, CancellationToken cancellationToken)
    {
        var image = await FindAsync(spec, cancellationToken).ConfigureAwait(false);
        if (image is null) return false;
        if (imageUser is not null && await imageUser(image.Id, cancellationToken).ConfigureAwait(false) is { } user)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"image \"{spec}\" ({image.Id}) is mounted as an image volume by {user}; remove that container first");
        var names = (await store.ByIdAsync(image.Id, cancellationToken).ConfigureAwait(false)).Select(r => r.Name).ToArray();
        await store.DeleteAsync(names, cancellationToken).ConfigureAwait(false);
        _configs.TryRemove(image.Id, out _);
        await gc.CollectAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Gives an existing image another name.</summary>
    public async Task<ImageRecord> TagAsync(string source, string target, CancellationToken cancellationToken)
    {
        var image = await FindAsync(source, cancellationToken).ConfigureAwait(false)
            ?? throw new HullException(ErrorKind.NotFound, $"image \"{source}\" not found");
        var template = (await store.ByIdAsync(image.Id, cancellationToken).ConfigureAwait(false))[0];
        var now = DateTimeOffset.UtcNow;
        var record = template with { Name = ImageReference.ParseDockerRef(target).ToString(), Created = now, Updated = now };
        await store.PutAsync([record], cancellationToken).ConfigureAwait(false);
        return record;
    }

    public Task<ImageFsUsage> SnapshotUsageAsync(CancellationToken cancellationToken) => Task.Run(() =>
    {
        var usage = SnapshotUsage.Measure(snapshotRoot, cancellationToken);
        return new ImageFsUsage(snapshotRoot, usage.Size, usage.Inodes, DateTimeOffset.UtcNow);
    }, cancellationToken);

    public Task<GcResult> CollectGarbageAsync(CancellationToken cancellationToken) => gc.CollectAsync(cancellationToken);

    public ISnapshotter Snapshotter => snapshotter;

    private static string? AsId(string spec)
    {
        if (spec.StartsWith("sha256:", StringComparison.Ordinal) && Digests.IsValid(spec)) return spec;
        if (spec.Length == 64 && spec.All(Uri.IsHexDigit)) return "sha256:" + spec;
        return null;
    }

    private static IReadOnlyList<ImageSummary> Summarise(IEnumerable<ImageRecord> records) =>
        records.GroupBy(r => r.ConfigDigest)
            .Select(g =>
            {
                var first = g.OrderBy(r => r.Created).First();
                return new ImageSummary(
                    g.Key,
                    g.Where(r => !r.Name.Contains('@')).Select(r => r.Name).Order(StringComparer.Ordinal).ToArray(),
                    g.Where(r => r.Name.Contains('@')).Select(r => r.Name).Order(StringComparer.Ordinal).ToArray(),
                    first.Size,
                    g.Any(r => r.Pinned),
                    first.ChainId,
                    first.ManifestDigest,
                    first.Snapshotter);
            })
            .OrderBy(s => s.Id, StringComparer.Ordinal)
            .ToArray();
}
