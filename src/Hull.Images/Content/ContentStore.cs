using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Linux;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Content;

public sealed record ContentStoreOptions
{
    /// <summary>Interrupted ingests untouched for longer than this are deleted at start (containerd keeps them for a day too).</summary>
    public TimeSpan StaleIngestAge { get; init; } = TimeSpan.FromHours(24);

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The local content store: blobs at <c>root/content/blobs/&lt;algorithm&gt;/&lt;hex&gt;</c>, ingests at
/// <c>root/content/ingest/&lt;sha256 of the ref&gt;/{data,status.json}</c> (the ref is hashed because it
/// may contain '/' and ':'), and the index in the <c>content</c> table of meta.db.
/// </summary>
public sealed class ContentStore : IContentStore
{
    internal const string StatusFile = "status.json";
    internal const string DataFile = "data";

    private readonly ContentIndex _index;
    private readonly KeyedAsyncLock _ingestLocks = new();
    private readonly ILogger _logger;

    /// <summary><c>root/content</c>.</summary>
    public string Root { get; }
    internal string BlobsRoot { get; }
    internal string IngestRoot { get; }
    internal TimeProvider Time { get; }

    private ContentStore(string root, MetadataStore metadata, TimeProvider time, ILogger logger)
    {
        Root = Path.Combine(Path.GetFullPath(root), "content");
        BlobsRoot = Path.Combine(Root, "blobs");
        IngestRoot = Path.Combine(Root, "ingest");
        _index = new ContentIndex(metadata);
        Time = time;
        _logger = logger;
    }

    /// <summary>
    /// Opens the store under Hull's <paramref name="root"/>: creates the directories, deletes stale
    /// and malformed ingests, and reconciles the index with the blobs on disk (a crash between the
    /// blob's rename and its index row, or between a delete's two steps, leaves them apart).
    /// </summary>
    public static async Task<ContentStore> OpenAsync(string root, MetadataStore metadata, ContentStoreOptions? options = null,
        ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        options ??= new ContentStoreOptions();
        var store = new ContentStore(root, metadata, options.Time, logger ?? NullLogger.Instance);
        Directory.CreateDirectory(store.BlobsRoot);
        Directory.CreateDirectory(store.IngestRoot);
        await store.CleanupIngestsAsync(options.StaleIngestAge, cancellationToken).ConfigureAwait(false);
        await store.ReconcileAsync(cancellationToken).ConfigureAwait(false);
        return store;
    }

    internal string BlobPath(string digest)
    {
        Digests.Validate(digest);
        int colon = digest.IndexOf(':');
        return Path.Combine(BlobsRoot, digest[..colon], digest[(colon + 1)..]);
    }

    internal string IngestDirectory(string ingestRef) =>
        Path.Combine(IngestRoot, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ingestRef))));

    public async Task<ContentInfo> InfoAsync(string digest, CancellationToken cancellationToken) =>
        await TryInfoAsync(digest, cancellationToken).ConfigureAwait(false) ?? throw NotFound(digest);

    public Task<ContentInfo?> TryInfoAsync(string digest, CancellationToken cancellationToken)
    {
        Digests.Validate(digest);
        return _index.GetAsync(digest, cancellationToken);
    }

    public Task<IReadOnlyList<ContentInfo>> WalkAsync(CancellationToken cancellationToken) => _index.AllAsync(cancellationToken);

    public Task<Stream> OpenReadAsync(string digest, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            return Task.FromResult<Stream>(new FileStream(BlobPath(digest), new FileStreamOptions
            {
                Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read | FileShare.Delete, Options = FileOptions.Asynchronous,
            }));
        }
        catch (FileNotFoundException)
        {
            throw NotFound(digest);
        }
    }

    public async Task<ContentInfo> SetLabelsAsync(string digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        Digests.Validate(digest);
        return await _index.SetLabelsAsync(digest, labels, Time.GetUtcNow(), cancellationToken).ConfigureAwait(false)
            ?? throw NotFound(digest);
    }

    public async Task DeleteAsync(string digest, CancellationToken cancellationToken)
    {
        string path = BlobPath(digest);
        // Row first, then the file: a crash in between leaves a blob the next start re-indexes for GC to find.
        bool hadRow = await _index.DeleteAsync(digest, cancellationToken).ConfigureAwait(false);
        bool hadFile = File.Exists(path);
        if (hadFile) File.Delete(path);
        if (!hadRow && !hadFile) throw NotFound(digest);
    }

    public async Task<ContentWriter> OpenWriterAsync(string ingestRef, Descriptor expected, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(ingestRef);
        ArgumentNullException.ThrowIfNull(expected);
        string blob = BlobPath(expected.Digest);
        if (File.Exists(blob)) throw AlreadyExists(expected.Digest);
        var held = await _ingestLocks.AcquireAsync(ingestRef, cancellationToken).ConfigureAwait(false);
        try
        {
            // The writer we may have waited for has committed it.
            if (File.Exists(blob)) throw AlreadyExists(expected.Digest);
            return await ContentWriter.OpenAsync(this, ingestRef, expected, held, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    public Task<IReadOnlyList<IngestStatus>> ListIngestsAsync(CancellationToken cancellationToken)
    {
        var list = new List<IngestStatus>();
        foreach (var dir in Directory.EnumerateDirectories(IngestRoot))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (ReadIngestStatus(dir) is { } status) list.Add(status);
        }
        return Task.FromResult<IReadOnlyList<IngestStatus>>(list);
    }

    public Task AbortAsync(string ingestRef, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var held = _ingestLocks.TryAcquire(ingestRef)
            ?? throw new HullException(ErrorKind.FailedPrecondition, $"ingest \"{ingestRef}\" is in use by a writer");
        string dir = IngestDirectory(ingestRef);
        if (!Directory.Exists(dir)) throw new HullException(ErrorKind.NotFound, $"ingest \"{ingestRef}\" not found");
        Directory.Delete(dir, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Deletes ingests not held by a writer that were last written more than <paramref name="olderThan"/>
    /// ago, and any ingest directory that is not a well-formed ingest (a crash while it was created).
    /// </summary>
    public Task<int> CleanupIngestsAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        int removed = 0;
        var cutoff = Time.GetUtcNow() - olderThan;
        foreach (var entry in Directory.EnumerateFileSystemEntries(IngestRoot))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!Directory.Exists(entry))
            {
                File.Delete(entry); // a temp file, nothing we wrote lives directly here
                removed++;
                continue;
            }
            var status = ReadIngestStatus(entry);
            if (status is { InUse: true }) continue;
            if (status is null || status.UpdatedAt < cutoff)
            {
                _logger.LogInformation("content store: removing {Kind} ingest {Ref} ({Dir})",
                    status is null ? "malformed" : "stale", status?.Ref ?? "?", entry);
                Directory.Delete(entry, recursive: true);
                removed++;
            }
        }
        return Task.FromResult(removed);
    }

    private async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var onDisk = new Dictionary<string, FileInfo>(StringComparer.Ordinal);
        foreach (var algorithmDir in Directory.EnumerateDirectories(BlobsRoot))
        {
            foreach (var file in new DirectoryInfo(algorithmDir).EnumerateFiles())
            {
                string digest = Path.GetFileName(algorithmDir) + ":" + file.Name;
                if (Digests.IsValid(digest)) onDisk[digest] = file;
                else _logger.LogWarning("content store: ignoring {File}, which is not named by a digest", file.FullName);
            }
        }
        var indexed = await _index.AllAsync(cancellationToken).ConfigureAwait(false);
        var indexedDigests = indexed.Select(i => i.Digest).ToHashSet(StringComparer.Ordinal);
        var added = onDisk.Where(p => !indexedDigests.Contains(p.Key))
            .Select(p => (p.Key, p.Value.Length, new DateTimeOffset(p.Value.LastWriteTimeUtc, TimeSpan.Zero))).ToList();
        var missing = indexed.Where(i => !onDisk.ContainsKey(i.Digest)).Select(i => i.Digest).ToList();
        if (added.Count == 0 && missing.Count == 0) return;
        _logger.LogWarning("content store: re-indexed {Added} blobs found on disk and dropped {Missing} index rows without a blob",
            added.Count, missing.Count);
        await _index.ReconcileAsync(added, missing, cancellationToken).ConfigureAwait(false);
    }

    internal Task<ContentInfo> IndexAsync(string digest, long size, string? mediaType, IReadOnlyDictionary<string, string>? labels,
        CancellationToken cancellationToken) =>
        _index.UpsertAsync(digest, size, mediaType, labels, Time.GetUtcNow(), cancellationToken);

    // ---- ingest status files -----------------------------------------------------------------

    internal sealed record IngestRecord(string Ref, string Digest, long Size, long StartedAt);

    internal static void WriteIngestRecord(string dir, IngestRecord record)
    {
        AtomicFile.WriteText(Path.Combine(dir, StatusFile), JsonSerializer.Serialize(record));
    }

    internal static IngestRecord? ReadIngestRecord(string dir)
    {
        try
        {
            var record = JsonSerializer.Deserialize<IngestRecord>(File.ReadAllText(Path.Combine(dir, StatusFile)));
            return record is { Ref.Length: > 0 } && Digests.IsValid(record.Digest) ? record : null;
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    private IngestStatus? ReadIngestStatus(string dir)
    {
        var record = ReadIngestRecord(dir);
        var data = new FileInfo(Path.Combine(dir, DataFile));
        if (record is null || !data.Exists || IngestDirectory(record.Ref) != dir) return null;
        return new IngestStatus(record.Ref, record.Digest, record.Size, data.Length,
            MetadataTime.FromUnixNanoseconds(record.StartedAt), new DateTimeOffset(data.LastWriteTimeUtc, TimeSpan.Zero),
            _ingestLocks.IsHeld(record.Ref));
    }

    internal static HullException NotFound(string digest) => new(ErrorKind.NotFound, $"content {digest} not found");

    internal static HullException AlreadyExists(string digest) => new(ErrorKind.AlreadyExists, $"content {digest} already exists");
}
