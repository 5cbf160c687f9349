using Hull.Images.Oci;

namespace Hull.Images.Content;

/// <summary>
/// Blobs addressed by digest (containerd's content.Store): written through resumable, digest-checked
/// ingests, indexed in the metadata store so GC can find the unreferenced ones.
/// </summary>
public interface IContentStore
{
    /// <summary>Throws NotFound naming the digest when the blob is not in the store.</summary>
    Task<ContentInfo> InfoAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Null when the blob is not in the store.</summary>
    Task<ContentInfo?> TryInfoAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Every committed blob, ordered by digest.</summary>
    Task<IReadOnlyList<ContentInfo>> WalkAsync(CancellationToken cancellationToken);

    /// <summary>A seekable read-only stream of the blob; NotFound when it is missing.</summary>
    Task<Stream> OpenReadAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Replaces the labels of a blob (GC references, distribution sources, …).</summary>
    Task<ContentInfo> SetLabelsAsync(string digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken);

    /// <summary>Removes the blob and its index row; NotFound when it is not there.</summary>
    Task DeleteAsync(string digest, CancellationToken cancellationToken);

    /// <summary>
    /// Opens (or resumes) the ingest <paramref name="ingestRef"/> for a blob that must match
    /// <paramref name="expected"/>'s digest and size. Only one writer holds a ref at a time: a second
    /// caller waits until the first one commits, aborts or drops it. Throws AlreadyExists when the blob
    /// is (or, after waiting, has become) present — so two pulls of one image share one download.
    /// </summary>
    Task<ContentWriter> OpenWriterAsync(string ingestRef, Descriptor expected, CancellationToken cancellationToken);

    /// <summary>Ingests on disk, in progress or interrupted.</summary>
    Task<IReadOnlyList<IngestStatus>> ListIngestsAsync(CancellationToken cancellationToken);

    /// <summary>Deletes an interrupted ingest; FailedPrecondition when a writer holds it, NotFound when there is none.</summary>
    Task AbortAsync(string ingestRef, CancellationToken cancellationToken);
}
