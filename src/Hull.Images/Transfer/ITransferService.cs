using Hull.Images.Oci;
using Hull.Images.Registry;
using Hull.Images.Store;

namespace Hull.Images.Transfer;

/// <summary>
/// Moving images between a source and a destination, as containerd's transfer service does:
/// registry → image store (pull), image store → registry (push), OCI archive ↔ image store
/// (import, export) and image store → image store (tag). Long operations report per-blob progress.
/// </summary>
public interface ITransferService
{
    /// <summary>Pulls <paramref name="reference"/> from its registry, unpacks it and records it.</summary>
    Task<ImageRecord> PullAsync(string reference, RegistryCredentials? credentials, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken);

    /// <summary>
    /// Pushes the image <paramref name="image"/> (a name or an ID) to <paramref name="target"/>, or to the
    /// name it was found by when <paramref name="target"/> is null. Blobs the registry has are skipped.
    /// </summary>
    Task<PushResult> PushAsync(string image, string? target, RegistryCredentials? credentials, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken);

    /// <summary>Reads an OCI image layout tar, stores and unpacks its images and records their names.</summary>
    Task<IReadOnlyList<ImageRecord>> ImportAsync(Stream archive, ImportOptions options, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken);

    /// <summary>Writes the images (names or IDs) as one OCI image layout tar.</summary>
    Task<ExportResult> ExportAsync(IReadOnlyList<string> images, Stream destination, IProgress<TransferProgress>? progress,
        CancellationToken cancellationToken);

    /// <summary>Gives an existing image another name.</summary>
    Task<ImageRecord> TagAsync(string source, string target, CancellationToken cancellationToken);
}

/// <summary>What a push put where.</summary>
/// <param name="Reference">The normalised reference pushed to.</param>
/// <param name="Pushed">The manifest or index the reference now names.</param>
/// <param name="ImageId">The config digest of the image.</param>
/// <param name="BlobsUploaded">Blobs sent; the others the registry had.</param>
/// <param name="BlobsSkipped">Blobs the registry already had.</param>
public sealed record PushResult(string Reference, Descriptor Pushed, string ImageId, int BlobsUploaded, int BlobsSkipped);

/// <summary>What an export wrote.</summary>
/// <param name="Images">The names written to index.json, with the root each names.</param>
/// <param name="Blobs">Blobs written (each once).</param>
/// <param name="Bytes">Blob bytes written.</param>
public sealed record ExportResult(IReadOnlyList<(string Name, Descriptor Root)> Images, int Blobs, long Bytes);

public sealed record ImportOptions
{
    /// <summary>
    /// The name to record the archive's image under, instead of the names its index.json gives; only
    /// for an archive of one image.
    /// </summary>
    public string? Name { get; init; }

    /// <summary>The platform picked from an index in the archive.</summary>
    public PlatformMatcher Platforms { get; init; } = PlatformMatcher.Default;

    /// <summary>Normalised names whose images are pinned (pinned_images).</summary>
    public IReadOnlySet<string> PinnedNames { get; init; } = new HashSet<string>();
}
