using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Oci;
using Hull.Images.Registry;
using Hull.Images.Store;

namespace Hull.Images.Transfer;

/// <summary>
/// The content of one image in the content store, as a push or an export sends it: the manifests
/// (children before the index over them, the root last) and the blobs they name (configs and layers,
/// each once).
/// </summary>
/// <param name="Root">What the image name points at after the transfer: the index, or the platform manifest.</param>
/// <param name="ConfigDigest">The image ID (the config of the platform manifest that was unpacked).</param>
public sealed record ImageContentTree(
    Descriptor Root,
    IReadOnlyList<(Descriptor Descriptor, byte[] Content)> Manifests,
    IReadOnlyList<(Descriptor Descriptor, string Kind)> Blobs,
    string ConfigDigest)
{
    /// <summary>
    /// The tree of <paramref name="record"/>: the whole index when the record names an index whose
    /// children (and their configs and layers) are all in the content store; otherwise the platform
    /// manifest that was pulled. NotFound naming the digest when even that is incomplete.
    /// </summary>
    public static async Task<ImageContentTree> ResolveAsync(IContentStore content, ImageRecord record, CancellationToken ct)
    {
        var manifests = new List<(Descriptor, byte[])>();
        var blobs = new List<(Descriptor, string)>();
        if (ManifestDocument.IsIndexType(record.Target.MediaType))
        {
            var missing = await CollectAsync(content, record.Target, record.Name, manifests, blobs, [], ct).ConfigureAwait(false);
            if (missing is null) return new ImageContentTree(record.Target, manifests, blobs, record.ConfigDigest);
            manifests.Clear();
            blobs.Clear();
        }
        var root = record.Target.Digest == record.ManifestDigest
            ? record.Target
            : await DescribeAsync(content, record.ManifestDigest, record.Name, ct).ConfigureAwait(false);
        var absent = await CollectAsync(content, root, record.Name, manifests, blobs, [], ct).ConfigureAwait(false);
        if (absent is not null)
            throw new HullException(ErrorKind.NotFound,
                $"image \"{record.Name}\" is incomplete: content {absent} is not in the content store");
        return new ImageContentTree(root, manifests, blobs, record.ConfigDigest);
    }

    /// <summary>A descriptor for a manifest or index in the store, its media type read from its content.</summary>
    public static async Task<Descriptor> DescribeAsync(IContentStore content, string digest, string image, CancellationToken ct)
    {
        var info = await content.TryInfoAsync(digest, ct).ConfigureAwait(false)
            ?? throw new HullException(ErrorKind.NotFound, $"image \"{image}\" is incomplete: content {digest} is not in the content store");
        var bytes = await ReadAllAsync(content, digest, RegistryRepository.MaxManifestSize, ct).ConfigureAwait(false);
        string? declared = info.MediaType is { Length: > 0 } t && (ManifestDocument.IsIndexType(t) || ManifestDocument.IsImageManifestType(t)) ? t : null;
        return new Descriptor(ManifestDocument.DetectMediaType(bytes, declared, image), digest, bytes.LongLength);
    }

    /// <summary>Reads a small blob (a manifest, index or config) whole; FailedPrecondition beyond <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]> ReadAllAsync(IContentStore content, string digest, int limit, CancellationToken ct)
    {
        await using var stream = await content.OpenReadAsync(digest, ct).ConfigureAwait(false);
        if (stream.CanSeek && stream.Length > limit)
            throw new HullException(ErrorKind.FailedPrecondition, $"content {digest} is {stream.Length} bytes, more than the {limit} a manifest or config may have");
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, ct).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>Walks a manifest or index depth first; returns the first digest missing from the store, or null.</summary>
    private static async Task<string?> CollectAsync(IContentStore content, Descriptor descriptor, string image,
        List<(Descriptor, byte[])> manifests, List<(Descriptor, string)> blobs, HashSet<string> seen, CancellationToken ct)
    {
        if (!seen.Add(descriptor.Digest)) return null;
        if (await content.TryInfoAsync(descriptor.Digest, ct).ConfigureAwait(false) is null) return descriptor.Digest;
        var bytes = await ReadAllAsync(content, descriptor.Digest, RegistryRepository.MaxManifestSize, ct).ConfigureAwait(false);
        string mediaType = descriptor.MediaType.Length > 0 ? descriptor.MediaType : ManifestDocument.DetectMediaType(bytes, null, image);
        switch (ManifestDocument.Parse(bytes, mediaType, image))
        {
            case ImageIndex index:
                foreach (var child in index.Manifests)
                {
                    if (child.MediaType.Length == 0 || ManifestDocument.IsIndexType(child.MediaType) || ManifestDocument.IsImageManifestType(child.MediaType))
                    {
                        if (await CollectAsync(content, child, image, manifests, blobs, seen, ct).ConfigureAwait(false) is { } missing) return missing;
                    }
                    else if (await AddBlobAsync(content, child, "blob", blobs, seen, ct).ConfigureAwait(false) is { } missing)
                    {
                        return missing;
                    }
                }
                break;
            case ImageManifest manifest:
                if (await AddBlobAsync(content, manifest.Config, "config", blobs, seen, ct).ConfigureAwait(false) is { } config) return config;
                foreach (var layer in manifest.Layers)
                {
                    if (await AddBlobAsync(content, layer, "layer", blobs, seen, ct).ConfigureAwait(false) is { } missing) return missing;
                }
                break;
        }
        manifests.Add((descriptor with { MediaType = mediaType }, bytes));
        return null;
    }

    private static async Task<string?> AddBlobAsync(IContentStore content, Descriptor blob, string kind, List<(Descriptor, string)> blobs,
        HashSet<string> seen, CancellationToken ct)
    {
        if (!seen.Add(blob.Digest)) return null;
        if (await content.TryInfoAsync(blob.Digest, ct).ConfigureAwait(false) is null) return blob.Digest;
        blobs.Add((blob, kind));
        return null;
    }
}
