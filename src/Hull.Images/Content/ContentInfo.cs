namespace Hull.Images.Content;

/// <summary>A committed blob as the content index knows it.</summary>
/// <param name="MediaType">What the writer said the blob was; null for blobs re-indexed from disk after a crash.</param>
public sealed record ContentInfo(
    string Digest,
    long Size,
    string? MediaType,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset Created,
    DateTimeOffset Updated);

/// <summary>An ingest in progress or interrupted: what it should become and how far it got.</summary>
/// <param name="Offset">Bytes already on disk; a fetcher resumes with <c>Range: bytes=Offset-</c>.</param>
/// <param name="InUse">A writer holds the ingest right now.</param>
public sealed record IngestStatus(
    string Ref,
    string ExpectedDigest,
    long ExpectedSize,
    long Offset,
    DateTimeOffset StartedAt,
    DateTimeOffset UpdatedAt,
    bool InUse);
