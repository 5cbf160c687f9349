using System.Buffers;
using System.Security.Cryptography;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Linux;

namespace Hull.Images.Content;

/// <summary>
/// A write-only stream into one ingest. The digest is computed while the bytes stream in; a fetcher
/// whose connection dropped disposes the writer (the bytes stay), opens it again and continues from
/// <see cref="Offset"/> with an HTTP Range request (or calls <see cref="ResetAsync"/> when the server
/// ignores the range). <see cref="CommitAsync"/> verifies size and digest, fsyncs and renames the data
/// into the blob store; a mismatch deletes the ingest and throws FailedPrecondition naming both digests.
/// </summary>
public sealed class ContentWriter : Stream
{
    private readonly ContentStore _store;
    private readonly string _dir;
    private readonly IDisposable _refLock;
    private FileStream? _data;
    private IncrementalHash _hash;
    private bool _finished;

    /// <summary>The ingest ref this writer holds.</summary>
    public string Ref { get; }

    /// <summary>What the content must turn out to be.</summary>
    public Descriptor Expected { get; }

    /// <summary>Bytes written so far, including those of an interrupted earlier attempt.</summary>
    public long Offset { get; private set; }

    /// <summary>True when this writer continued the bytes of an earlier, interrupted attempt.</summary>
    public bool Resumed { get; private init; }

    private ContentWriter(ContentStore store, string dir, string ingestRef, Descriptor expected, IDisposable refLock,
        FileStream data, IncrementalHash hash, long offset)
    {
        _store = store;
        _dir = dir;
        _refLock = refLock;
        _data = data;
        _hash = hash;
        Ref = ingestRef;
        Expected = expected;
        Offset = offset;
    }

    internal static async Task<ContentWriter> OpenAsync(ContentStore store, string ingestRef, Descriptor expected, IDisposable refLock,
        CancellationToken cancellationToken)
    {
        string dir = store.IngestDirectory(ingestRef);
        var record = Directory.Exists(dir) ? ContentStore.ReadIngestRecord(dir) : null;
        bool resume = record is not null && record.Ref == ingestRef && record.Digest == expected.Digest && record.Size == expected.Size;
        if (!resume)
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); // another blob under the same ref, or torn
            Directory.CreateDirectory(dir);
            ContentStore.WriteIngestRecord(dir, new ContentStore.IngestRecord(ingestRef, expected.Digest, expected.Size,
                MetadataTime.ToUnixNanoseconds(store.Time.GetUtcNow())));
        }

        var data = new FileStream(Path.Combine(dir, ContentStore.DataFile), new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.Read, BufferSize = 0,
            Options = FileOptions.Asynchronous, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        var hash = Digests.CreateHash(expected.Digest);
        try
        {
            long offset = resume ? await RehashAsync(data, hash, cancellationToken).ConfigureAwait(false) : 0;
            if (expected.Size >= 0 && offset > expected.Size)
            {
                // More bytes than the blob has: they cannot be a prefix of it.
                data.SetLength(0);
                hash.Dispose();
                hash = Digests.CreateHash(expected.Digest);
                offset = 0;
            }
            data.Position = offset;
            return new ContentWriter(store, dir, ingestRef, expected, refLock, data, hash, offset) { Resumed = offset > 0 };
        }
        catch
        {
            hash.Dispose();
            await data.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Feeds the bytes already on disk to the hash (the running hash state cannot be persisted).</summary>
    private static async Task<long> RehashAsync(FileStream data, IncrementalHash hash, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long total = 0;
            data.Position = 0;
            int read;
            while ((read = await data.ReadAsync(buffer.AsMemory(0, 1 << 20), cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                total += read;
            }
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var data = Data();
        if (Expected.Size >= 0 && Offset + buffer.Length > Expected.Size)
            await FailAsync($"content {Expected.Digest}: size mismatch: expected {Expected.Size} bytes, got more than that ({Offset + buffer.Length})")
                .ConfigureAwait(false);
        await data.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _hash.AppendData(buffer.Span);
        Offset += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Starts over from byte 0, for a server that answered a Range request with the whole blob.</summary>
    public Task ResetAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var data = Data();
        data.SetLength(0);
        data.Position = 0;
        _hash.Dispose();
        _hash = Digests.CreateHash(Expected.Digest);
        Offset = 0;
        return Task.CompletedTask;
    }

    /// <summary>
    /// Verifies size and digest, makes the data durable (fsync, rename into blobs/, fsync of the
    /// directory), records the blob in the index and releases the ref. If another ingest committed
    /// the same blob meanwhile, this one's bytes are dropped and the existing blob is reported.
    /// <paramref name="cancellationToken"/> is honoured only before the commit starts: once the blob is
    /// in blobs/ its index row must follow, or garbage collection (which walks the index) never sees it.
    /// </summary>
    public async Task<ContentInfo> CommitAsync(IReadOnlyDictionary<string, string>? labels = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var data = Data();
        if (Expected.Size >= 0 && Offset != Expected.Size)
            await FailAsync($"content {Expected.Digest}: size mismatch: expected {Expected.Size} bytes, got {Offset}").ConfigureAwait(false);
        string actual = Digests.Format(Digests.Algorithm(Expected.Digest), _hash.GetCurrentHash());
        if (actual != Expected.Digest)
            await FailAsync($"content {Expected.Digest}: digest mismatch: expected {Expected.Digest}, got {actual} ({Offset} bytes)").ConfigureAwait(false);

        data.Flush(flushToDisk: true);
        await data.DisposeAsync().ConfigureAwait(false);
        _data = null;

        string blob = _store.BlobPath(Expected.Digest);
        string blobDir = Path.GetDirectoryName(blob)!;
        Directory.CreateDirectory(blobDir);
        string source = Path.Combine(_dir, ContentStore.DataFile);
        // Blobs are immutable; read-only modes make an accidental in-place edit fail loudly.
        File.SetUnixFileMode(source, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        if (!File.Exists(blob))
        {
            File.Move(source, blob);
            FileSync.SyncDirectory(blobDir);
        }
        Directory.Delete(_dir, recursive: true);
        Finish();
        return await _store.IndexAsync(Expected.Digest, Offset, Expected.MediaType, labels, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Deletes the ingest and its bytes.</summary>
    public async Task AbortAsync()
    {
        if (_finished) return;
        if (_data is not null) await _data.DisposeAsync().ConfigureAwait(false);
        _data = null;
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        Finish();
    }

    private async Task FailAsync(string message)
    {
        await AbortAsync().ConfigureAwait(false);
        throw new HullException(ErrorKind.FailedPrecondition, message);
    }

    private FileStream Data()
    {
        ObjectDisposedException.ThrowIf(_finished || _data is null, this);
        return _data;
    }

    private void Finish()
    {
        _finished = true;
        _hash.Dispose();
        _refLock.Dispose();
    }

    /// <summary>Closes the ingest without committing: its bytes stay for a later resume.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (!_finished)
        {
            if (_data is not null) await _data.DisposeAsync().ConfigureAwait(false);
            _data = null;
            Finish();
        }
        GC.SuppressFinalize(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            _data?.Dispose();
            _data = null;
            Finish();
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_finished;
    public override long Length => Offset;
    public override long Position { get => Offset; set => throw new NotSupportedException(); }
    public override void Flush() { } // durability comes with CommitAsync
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
