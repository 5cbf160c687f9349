using System.Formats.Tar;
using System.Text.Json;
using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Transfer;

/// <summary>
/// OCI archive → image store. The tar is read once, as a stream: each <c>blobs/…</c> entry goes through
/// a content-store ingest that checks its digest and size, <c>index.json</c> and <c>oci-layout</c> are
/// kept in memory. Then each image index.json lists is resolved (an index to this node's platform),
/// its layers unpacked into snapshots as a pull unpacks them, and its names recorded. Everything is
/// leased while it happens; a failed import removes what it wrote (the lease goes, a collection runs).
/// </summary>
public sealed class OciArchiveImporter(
    IContentStore content,
    ISnapshotter snapshotter,
    ImageStore images,
    LeaseManager leases,
    GarbageCollector gc,
    ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly ContentUnpacker _unpacker = new(content, snapshotter);

    /// <summary>Imports every image of the archive; returns the records written, the given name (or the first) first.</summary>
    public async Task<IReadOnlyList<ImageRecord>> ImportAsync(Stream archive, ImportOptions options, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken)
    {
        bool succeeded = false;
        var lease = leases.Create("import");
        try
        {
            var records = await ImportLeasedAsync(archive, options, lease, progress, cancellationToken).ConfigureAwait(false);
            succeeded = true;
            return records;
        }
        finally
        {
            lease.Dispose();
            try
            {
                await gc.CollectAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "garbage collection after {Outcome} import failed", succeeded ? "an" : "a failed");
            }
        }
    }

    private async Task<IReadOnlyList<ImageRecord>> ImportLeasedAsync(Stream archive, ImportOptions options, Lease lease,
        IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        string? givenName = options.Name is { Length: > 0 } n ? ImageReference.ParseDockerRef(n).ToString() : null;
        string label = givenName ?? "archive";
        var (layout, indexJson) = await ReadArchiveAsync(archive, lease, label, progress, ct).ConfigureAwait(false);
        if (layout is null)
            throw Invalid($"it has no {OciArchive.LayoutFile} file, so it is not an OCI image layout");
        CheckLayout(layout);
        if (indexJson is null) throw Invalid($"it has no {OciArchive.IndexFile}");

        ImageIndex index;
        try
        {
            index = ManifestDocument.Parse(indexJson, MediaTypes.OciIndex, OciArchive.IndexFile) as ImageIndex
                ?? throw Invalid($"its {OciArchive.IndexFile} is not an image index");
        }
        catch (HullException e) when (e.Kind is ErrorKind.FailedPrecondition or ErrorKind.InvalidArgument)
        {
            throw Invalid($"its {OciArchive.IndexFile} is malformed: {e.Message}");
        }
        if (index.Manifests.Count == 0) throw Invalid($"its {OciArchive.IndexFile} lists no image");

        // Names first: an archive that cannot be named fails before anything is unpacked.
        var roots = index.Manifests.GroupBy(m => m.Digest, StringComparer.Ordinal).ToArray();
        var named = new List<(Descriptor Root, List<string> Names)>();
        if (givenName is not null)
        {
            if (roots.Length > 1)
                throw new HullException(ErrorKind.InvalidArgument,
                    $"the archive holds {roots.Length} images; a name can only be given for an archive of one image");
            named.Add((roots[0].First(), [givenName]));
        }
        else
        {
            foreach (var group in roots)
            {
                var names = group.Select(d => OciArchive.NameOf(d.Annotations)?.ToString()).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
                if (names.Count == 0)
                {
                    string? refName = group.Select(d => d.Annotations?.GetValueOrDefault(OciArchive.RefNameAnnotation)).FirstOrDefault(r => r is not null);
                    throw new HullException(ErrorKind.InvalidArgument, refName is null
                        ? $"image {group.Key} in the archive has no name ({OciArchive.RefNameAnnotation}); give it one"
                        : $"image {group.Key} in the archive is named only by the tag \"{refName}\" ({OciArchive.RefNameAnnotation}), which names no repository; give it a name");
                }
                named.Add((group.First(), names));
            }
        }

        var records = new List<ImageRecord>();
        foreach (var (root, names) in named)
        {
            ct.ThrowIfCancellationRequested();
            records.AddRange(await ImportImageAsync(root, names, options, lease, progress, ct).ConfigureAwait(false));
        }
        return records;
    }

    private async Task<IReadOnlyList<ImageRecord>> ImportImageAsync(Descriptor root, List<string> names, ImportOptions options, Lease lease,
        IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        string name = names[0];
        await RequireAsync(root.Digest, $"the image \"{name}\"", ct).ConfigureAwait(false);
        var top = root with { Annotations = null, Platform = null };
        if (top.MediaType.Length == 0) top = await ImageContentTree.DescribeAsync(content, top.Digest, name, ct).ConfigureAwait(false);

        // An index (possibly nested) resolves to this node's platform among the manifests the archive has.
        var manifestDescriptor = top;
        ManifestDocument document = await ParseAsync(manifestDescriptor, name, ct).ConfigureAwait(false);
        while (document is ImageIndex nested)
        {
            var present = new List<Descriptor>();
            foreach (var m in nested.Manifests)
            {
                if (await content.TryInfoAsync(m.Digest, ct).ConfigureAwait(false) is not null) present.Add(m);
            }
            manifestDescriptor = options.Platforms.Select(present) ?? throw new HullException(ErrorKind.NotFound,
                $"image \"{name}\" in the archive has no manifest for platform {options.Platforms.Preference[0]} " +
                $"(it has {string.Join(", ", present.Select(m => m.Platform?.ToString() ?? "unknown"))})");
            lease.AddContent(manifestDescriptor.Digest);
            if (manifestDescriptor.MediaType.Length == 0)
                manifestDescriptor = await ImageContentTree.DescribeAsync(content, manifestDescriptor.Digest, name, ct).ConfigureAwait(false);
            document = await ParseAsync(manifestDescriptor, name, ct).ConfigureAwait(false);
        }
        if (document is not ImageManifest manifest)
            throw new HullException(ErrorKind.InvalidArgument, $"image \"{name}\" in the archive: {manifestDescriptor.Digest} is not an image manifest");

        await RequireAsync(manifest.Config.Digest, $"the config of image \"{name}\"", ct).ConfigureAwait(false);
        for (int i = 0; i < manifest.Layers.Count; i++)
            await RequireAsync(manifest.Layers[i].Digest, $"layer {i + 1} of image \"{name}\"", ct).ConfigureAwait(false);
        var config = await _unpacker.ReadConfigAsync(manifest, name, ct).ConfigureAwait(false);
        foreach (var chain in ChainIdsOf(config)) lease.AddChain(chain);
        var chains = await _unpacker.UnpackAsync(manifest, config, name, progress, ct).ConfigureAwait(false);
        if (chains.Count == 0)
            throw new HullException(ErrorKind.InvalidArgument, $"image \"{name}\" in the archive has no layers");

        var all = new List<string>();
        foreach (var n in names)
        {
            all.Add(n);
            var digestName = ImageReference.ParseDockerRef(n).WithoutObject().WithDigest(top.Digest).ToString();
            if (!all.Contains(digestName) && !names.Contains(digestName)) all.Add(digestName);
        }
        var now = DateTimeOffset.UtcNow;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (all.Any(options.PinnedNames.Contains)) labels[ImageLabels.Pinned] = "pinned";
        long size = manifest.Config.Size + manifest.Layers.Sum(l => l.Size);
        var records = all.Select(n => new ImageRecord(n, top, manifestDescriptor.Digest, manifest.Config.Digest, chains[^1], snapshotter.Name,
            size, labels, now, now)).ToArray();
        await images.PutAsync(records, ct).ConfigureAwait(false);
        progress?.Report(new TransferProgress(name, top.Digest, "image", TransferPhase.Done, size, size));
        _logger.LogInformation("imported {Image} ({Id}, {Layers} layers, {Size} bytes)", name, manifest.Config.Digest, chains.Count, size);
        return records;
    }

    private static IReadOnlyList<string> ChainIdsOf(ImageConfig config) => Unpack.ChainIds.Compute(config.RootFs.DiffIds);

    private async Task<ManifestDocument> ParseAsync(Descriptor descriptor, string image, CancellationToken ct)
    {
        var bytes = await ImageContentTree.ReadAllAsync(content, descriptor.Digest, RegistryRepository.MaxManifestSize, ct).ConfigureAwait(false);
        return ManifestDocument.Parse(bytes, descriptor.MediaType, image);
    }

    private async Task RequireAsync(string digest, string what, CancellationToken ct)
    {
        if (await content.TryInfoAsync(digest, ct).ConfigureAwait(false) is null)
            throw Invalid($"{what} needs blob {digest}, which is not in it ({OciArchive.BlobPath(digest)})");
    }

    /// <summary>Streams the tar: blobs into the content store, the two metadata files into memory.</summary>
    private async Task<(byte[]? Layout, byte[]? Index)> ReadArchiveAsync(Stream archive, Lease lease, string label,
        IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        byte[]? layout = null, index = null;
        Stream input = await MaybeDecompressAsync(archive, ct).ConfigureAwait(false);
        try
        {
            await using var reader = new TarReader(input, leaveOpen: true);
            while (await reader.GetNextEntryAsync(copyData: false, ct).ConfigureAwait(false) is { } entry)
            {
                string path = EntryPath(entry.Name);
                if (entry.EntryType is TarEntryType.Directory or TarEntryType.GlobalExtendedAttributes) continue;
                bool regular = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile;
                if (path == OciArchive.LayoutFile || path == OciArchive.IndexFile)
                {
                    if (!regular) throw Invalid($"its {path} is a {entry.EntryType}, not a file");
                    var bytes = await ReadSmallAsync(entry, path, ct).ConfigureAwait(false);
                    if (path == OciArchive.LayoutFile) layout = bytes;
                    else index = bytes;
                }
                else if (path.StartsWith(OciArchive.BlobsDirectory + "/", StringComparison.Ordinal))
                {
                    string digest = BlobDigest(path);
                    if (!regular) throw Invalid($"its entry \"{entry.Name}\" is a {entry.EntryType}, not a file");
                    lease.AddContent(digest);
                    await IngestAsync(entry, digest, label, progress, ct).ConfigureAwait(false);
                }
                // Anything else (a docker save manifest.json, repositories, …) is not part of the layout.
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw Invalid($"it is not a readable tar: {e.Message}");
        }
        finally
        {
            if (!ReferenceEquals(input, archive)) await input.DisposeAsync().ConfigureAwait(false);
        }
        return (layout, index);
    }

    /// <summary>A gzip-compressed archive (oci-archive.tar.gz) is read through a decompressor.</summary>
    private static async Task<Stream> MaybeDecompressAsync(Stream archive, CancellationToken ct)
    {
        if (!archive.CanSeek) return archive;
        long start = archive.Position;
        var magic = new byte[2];
        int read = await archive.ReadAtLeastAsync(magic, 2, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        archive.Position = start;
        return read == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? Unpack.DecompressionStream.Gzip(archive) : archive;
    }

    /// <summary>"./index.json" and "/index.json" are "index.json".</summary>
    private static string EntryPath(string name)
    {
        while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        return name.TrimStart('/');
    }

    private static string BlobDigest(string path)
    {
        var parts = path.Split('/');
        string digest = parts.Length == 3 ? parts[1] + ":" + parts[2] : "";
        if (!Digests.IsValid(digest))
            throw Invalid($"its entry \"{path}\" is not named blobs/<algorithm>/<hex digest>");
        return digest;
    }

    private async Task IngestAsync(TarEntry entry, string digest, string label, IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        long size = entry.Length;
        if (await content.TryInfoAsync(digest, ct).ConfigureAwait(false) is not null)
        {
            progress?.Report(new TransferProgress(label, digest, "blob", TransferPhase.AlreadyPresent, size, size));
            return; // the reader skips the entry's data
        }
        ContentWriter writer;
        try
        {
            writer = await content.OpenWriterAsync($"import-{digest}", new Descriptor("application/octet-stream", digest, size), ct).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            return;
        }
        await using (writer)
        {
            try
            {
                if (writer.Offset > 0) await writer.ResetAsync(ct).ConfigureAwait(false);
                progress?.Report(new TransferProgress(label, digest, "blob", TransferPhase.Reading, 0, size));
                if (entry.DataStream is { } data)
                {
                    await using var counted = new ProgressReadStream(data, n => progress?.Report(new TransferProgress(label, digest, "blob", TransferPhase.Reading, n, size)));
                    await counted.CopyToAsync(writer, 128 * 1024, ct).ConfigureAwait(false);
                }
                await writer.CommitAsync(null, ct).ConfigureAwait(false);
            }
            catch (HullException e) when (e.Kind == ErrorKind.FailedPrecondition)
            {
                await writer.AbortAsync().ConfigureAwait(false);
                throw new HullException(ErrorKind.FailedPrecondition, $"archive entry \"{entry.Name}\" does not hold the blob its name says: {e.Message}", e);
            }
            catch
            {
                await writer.AbortAsync().ConfigureAwait(false);
                throw;
            }
        }
        progress?.Report(new TransferProgress(label, digest, "blob", TransferPhase.Done, size, size));
    }

    private static async Task<byte[]> ReadSmallAsync(TarEntry entry, string path, CancellationToken ct)
    {
        if (entry.Length > OciArchive.MaxMetadataSize)
            throw Invalid($"its {path} is {entry.Length} bytes, more than {OciArchive.MaxMetadataSize}");
        if (entry.DataStream is null) return [];
        using var buffer = new MemoryStream();
        await entry.DataStream.CopyToAsync(buffer, ct).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static void CheckLayout(byte[] layout)
    {
        try
        {
            using var doc = JsonDocument.Parse(layout);
            if (doc.RootElement.ValueKind != JsonValueKind.Object ||
                !doc.RootElement.TryGetProperty("imageLayoutVersion", out var version) || version.ValueKind != JsonValueKind.String)
                throw Invalid($"its {OciArchive.LayoutFile} has no imageLayoutVersion");
        }
        catch (JsonException e)
        {
            throw Invalid($"its {OciArchive.LayoutFile} is not JSON: {e.Message}");
        }
    }

    private static HullException Invalid(string reason) => new(ErrorKind.InvalidArgument, $"invalid OCI archive: {reason}");
}
