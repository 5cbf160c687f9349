using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Store;

namespace Hull.Images.Transfer;

/// <summary>
/// Image store → OCI archive: writes one OCI image layout tar with every image's manifests, configs and
/// layers from the content store (each blob once) and an index.json that names each image with
/// <c>io.containerd.image.name</c> (the full name) and <c>org.opencontainers.image.ref.name</c> (its tag),
/// as <c>ctr images export</c> does. An index is written whole when all its children are present,
/// otherwise the platform manifest that was pulled stands for the image.
/// </summary>
public sealed class OciArchiveExporter(IContentStore content, LeaseManager leases)
{
    private static readonly DateTimeOffset EntryTime = DateTimeOffset.UnixEpoch;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode DirectoryMode = FileMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Writes the images to <paramref name="destination"/> (not closed), the first name first in index.json.</summary>
    public async Task<ExportResult> ExportAsync(IReadOnlyList<ImageRecord> records, Stream destination, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (records.Count == 0) throw new HullException(ErrorKind.InvalidArgument, "export: no image given");
        using var lease = leases.Create($"export {records[0].Name}");
        var trees = new List<(ImageRecord Record, ImageContentTree Tree)>();
        foreach (var record in records)
        {
            lease.AddContent(record.Target.Digest);
            lease.AddContent(record.ManifestDigest);
            var tree = await ImageContentTree.ResolveAsync(content, record, cancellationToken).ConfigureAwait(false);
            foreach (var (d, _) in tree.Manifests) lease.AddContent(d.Digest);
            foreach (var (d, _) in tree.Blobs) lease.AddContent(d.Digest);
            trees.Add((record, tree));
        }

        await using var tar = new TarWriter(destination, TarEntryFormat.Ustar, leaveOpen: true);
        await WriteFileAsync(tar, OciArchive.LayoutFile, Encoding.UTF8.GetBytes($$"""{"imageLayoutVersion":"{{OciArchive.LayoutVersion}}"}"""), cancellationToken)
            .ConfigureAwait(false);
        await WriteFileAsync(tar, OciArchive.IndexFile, IndexJson(trees), cancellationToken).ConfigureAwait(false);

        var written = new HashSet<string>(StringComparer.Ordinal);
        var directories = new HashSet<string>(StringComparer.Ordinal);
        long bytes = 0;
        foreach (var (record, tree) in trees)
        {
            string name = record.Name;
            foreach (var (d, kind) in tree.Blobs)
            {
                if (!written.Add(d.Digest)) continue;
                await WriteDirectoriesAsync(tar, d.Digest, directories, cancellationToken).ConfigureAwait(false);
                progress?.Report(new TransferProgress(name, d.Digest, kind, TransferPhase.Writing, 0, d.Size));
                await using (var stream = await content.OpenReadAsync(d.Digest, cancellationToken).ConfigureAwait(false))
                {
                    if (stream.Length != d.Size)
                        throw new HullException(ErrorKind.FailedPrecondition,
                            $"content {d.Digest} of image \"{name}\" is {stream.Length} bytes, but its manifest says {d.Size}");
                    await using var counted = new ProgressReadStream(stream, n => progress?.Report(new TransferProgress(name, d.Digest, kind, TransferPhase.Writing, n, d.Size)));
                    await WriteEntryAsync(tar, OciArchive.BlobPath(d.Digest), counted, d.Size, cancellationToken).ConfigureAwait(false);
                }
                bytes += d.Size;
                progress?.Report(new TransferProgress(name, d.Digest, kind, TransferPhase.Done, d.Size, d.Size));
            }
            foreach (var (d, manifest) in tree.Manifests)
            {
                if (!written.Add(d.Digest)) continue;
                await WriteDirectoriesAsync(tar, d.Digest, directories, cancellationToken).ConfigureAwait(false);
                await WriteEntryAsync(tar, OciArchive.BlobPath(d.Digest), new MemoryStream(manifest), manifest.Length, cancellationToken).ConfigureAwait(false);
                bytes += manifest.Length;
                progress?.Report(new TransferProgress(name, d.Digest, ManifestDocumentKind(d), TransferPhase.Done, d.Size, d.Size));
            }
            long size = tree.Blobs.Sum(b => b.Descriptor.Size);
            progress?.Report(new TransferProgress(name, tree.Root.Digest, "image", TransferPhase.Done, size, size));
        }
        return new ExportResult(trees.Select(t => (t.Record.Name, t.Tree.Root)).ToArray(), written.Count, bytes);
    }

    private static string ManifestDocumentKind(Descriptor d) => Registry.ManifestDocument.IsIndexType(d.MediaType) ? "index" : "manifest";

    private static byte[] IndexJson(IEnumerable<(ImageRecord Record, ImageContentTree Tree)> trees)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", MediaTypes.OciIndex);
            json.WriteStartArray("manifests");
            foreach (var (record, tree) in trees)
            {
                json.WriteStartObject();
                json.WriteString("mediaType", tree.Root.MediaType);
                json.WriteString("digest", tree.Root.Digest);
                json.WriteNumber("size", tree.Root.Size);
                json.WriteStartObject("annotations");
                json.WriteString(OciArchive.ImageNameAnnotation, record.Name);
                if (ImageReference.TryParseDockerRef(record.Name, out var name) && OciArchive.RefName(name) is { } refName)
                    json.WriteString(OciArchive.RefNameAnnotation, refName);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static async Task WriteDirectoriesAsync(TarWriter tar, string digest, HashSet<string> written, CancellationToken ct)
    {
        string algorithm = Digests.Algorithm(digest);
        foreach (var dir in new[] { OciArchive.BlobsDirectory + "/", $"{OciArchive.BlobsDirectory}/{algorithm}/" })
        {
            if (!written.Add(dir)) continue;
            var entry = new UstarTarEntry(TarEntryType.Directory, dir) { Mode = DirectoryMode, ModificationTime = EntryTime };
            await tar.WriteEntryAsync(entry, ct).ConfigureAwait(false);
        }
    }

    private static Task WriteFileAsync(TarWriter tar, string name, byte[] content, CancellationToken ct) =>
        WriteEntryAsync(tar, name, new MemoryStream(content), content.Length, ct);

    /// <summary>Plain ustar entries (every tool reads them); pax only for a blob too large for ustar's size field.</summary>
    private static async Task WriteEntryAsync(TarWriter tar, string name, Stream data, long size, CancellationToken ct)
    {
        TarEntry entry = size < UstarMaxSize
            ? new UstarTarEntry(TarEntryType.RegularFile, name)
            : new PaxTarEntry(TarEntryType.RegularFile, name);
        entry.Mode = FileMode;
        entry.ModificationTime = EntryTime;
        entry.DataStream = data; // seekable: the writer takes the size from it
        await tar.WriteEntryAsync(entry, ct).ConfigureAwait(false);
    }

    private const long UstarMaxSize = 8L * 1024 * 1024 * 1024 - 1;
}
