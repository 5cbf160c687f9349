using Hull.Core;
using Hull.Linux;

namespace Hull.Images.Unpack;

/// <summary>
/// Unpacks a layer while it streams: decompress (gzip, zstd or none, by magic bytes) → hash → untar,
/// with no uncompressed copy on disk. Returns the DiffID (sha256 of the uncompressed tar) for the
/// caller to check against the image config's rootfs.diff_ids.
/// </summary>
public static class LayerApplier
{
    /// <summary>Applies into a plain directory, deleting what whiteouts hide.</summary>
    public static Task<string> ApplyAsync(Stream compressedOrNot, string mediaType, string targetDir, CancellationToken cancellationToken) =>
        ApplyAsync(compressedOrNot, mediaType, targetDir, new LayerApplyOptions(), cancellationToken);

    /// <summary>Applies into the writable directory behind an active snapshot's mounts (see <see cref="TargetOf"/>).</summary>
    public static Task<string> ApplyAsync(Stream compressedOrNot, string mediaType, IReadOnlyList<Mount> mounts, string? layerDigest,
        CancellationToken cancellationToken)
    {
        var (dir, options) = TargetOf(mounts, layerDigest);
        return ApplyAsync(compressedOrNot, mediaType, dir, options, cancellationToken);
    }

    public static async Task<string> ApplyAsync(Stream compressedOrNot, string mediaType, string targetDir, LayerApplyOptions options,
        CancellationToken cancellationToken)
    {
        string layer = options.LayerDigest ?? "(unnamed)";
        LayerDecompression.CheckMediaType(mediaType, layer);
        string root = Path.GetFullPath(targetDir).TrimEnd('/');
        if (FileStatus.TryGet(root) is not { IsDirectory: true })
            throw new HullException(ErrorKind.NotFound, $"layer {layer}: target directory \"{root}\" does not exist");

        var (decompressed, compression) = await LayerDecompression.OpenAsync(compressedOrNot, cancellationToken).ConfigureAwait(false);
        await using var _ = decompressed;
        using var hashing = new HashingReadStream(decompressed);
        // Tar headers are read 512 bytes at a time; buffering keeps that off the decompressor's call path.
        var reader = new LayerTarReader(new BufferedStream(hashing, 64 * 1024));
        var extraction = new LayerExtraction(root, options);
        LayerTarEntry? entry = null;
        try
        {
            while ((entry = await reader.NextAsync(cancellationToken).ConfigureAwait(false)) is not null)
                await extraction.ApplyAsync(entry, cancellationToken).ConfigureAwait(false);
            entry = null;
            extraction.Finish();
            // The DiffID covers the whole tar, including the padding after its end marker.
            await hashing.DrainAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            string what = compression == LayerCompression.None ? "tar" : $"{compression.ToString().ToLowerInvariant()}-compressed tar";
            throw new HullException(ErrorKind.InvalidArgument,
                $"layer {layer} is not a valid {what}{(entry is null ? "" : $" (at entry \"{entry.Name}\")")}: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.Internal,
                $"layer {layer}: unpacking {(entry is null ? "" : $"entry \"{entry.Name}\" ")}into \"{root}\" failed: {e.Message}", e);
        }
        return hashing.Digest();
    }

    /// <summary>
    /// Where a layer goes for a snapshot's mounts: an overlay's upperdir (whiteouts kept in overlay
    /// form, lowerdirs as parents) or a writable bind mount's source (whiteouts applied as deletions).
    /// </summary>
    public static (string Directory, LayerApplyOptions Options) TargetOf(IReadOnlyList<Mount> mounts, string? layerDigest)
    {
        if (mounts.Count == 1 && mounts[0].Type == "overlay")
        {
            string? upper = Option(mounts[0], "upperdir=");
            if (upper is null)
                throw new HullException(ErrorKind.InvalidArgument, $"layer {layerDigest}: cannot apply to a read-only overlay (no upperdir)");
            var lowers = Option(mounts[0], "lowerdir=")?.Split(':', StringSplitOptions.RemoveEmptyEntries) ?? [];
            return (upper, new LayerApplyOptions { Whiteouts = WhiteoutMode.Overlay, ParentDirectories = lowers, LayerDigest = layerDigest });
        }
        if (mounts.Count == 1 && mounts[0].Type == "bind")
        {
            if (mounts[0].Options.Contains("ro"))
                throw new HullException(ErrorKind.InvalidArgument, $"layer {layerDigest}: cannot apply to a read-only bind mount of \"{mounts[0].Source}\"");
            return (mounts[0].Source, new LayerApplyOptions { Whiteouts = WhiteoutMode.Delete, LayerDigest = layerDigest });
        }
        throw new HullException(ErrorKind.InvalidArgument,
            $"layer {layerDigest}: cannot apply to mounts [{string.Join(", ", mounts.Select(m => m.Type))}]; expected one overlay or bind mount");
    }

    private static string? Option(Mount mount, string prefix) =>
        mount.Options.FirstOrDefault(o => o.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
}
