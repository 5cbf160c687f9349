namespace Hull.Images.Registry;

/// <summary>
/// The body of a blob download, read from a given offset to the blob's size. Reports the running byte
/// count (offset included) to a progress sink, and when the connection breaks mid-body it asks for the
/// rest with a Range request instead of failing the whole pull. It does not verify the digest: the
/// content store does that while writing.
/// </summary>
internal sealed class BlobReadStream : Stream
{
    /// <summary>Opens the blob at an offset and returns a body positioned there.</summary>
    public delegate Task<Stream> Opener(long offset, CancellationToken ct);

    private readonly Opener _reopen;
    private readonly string _digest;
    private readonly long _size;
    private readonly IProgress<long>? _progress;
    private int _resumesLeft;
    private Stream _inner;
    private long _position;

    public BlobReadStream(Stream inner, long offset, long size, string digest, IProgress<long>? progress, Opener reopen, int maxResumes)
    {
        _inner = inner;
        _position = offset;
        _size = size;
        _digest = digest;
        _progress = progress;
        _reopen = reopen;
        _resumesLeft = maxResumes;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _size;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        long remaining = _size - _position;
        if (remaining <= 0) return 0;
        if (buffer.Length > remaining) buffer = buffer[..(int)remaining];

        while (true)
        {
            int n;
            try
            {
                n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException && _resumesLeft > 0 && !cancellationToken.IsCancellationRequested)
            {
                await ResumeAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (n == 0)
            {
                // The server closed the body early: resume, or report the truncation.
                if (_resumesLeft > 0)
                {
                    await ResumeAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw new IOException($"blob \"{_digest}\" ended after {_position} of {_size} bytes");
            }

            _position += n;
            _progress?.Report(_position);
            return n;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Synchronous readers (tar, gzip used synchronously) still work; the async path is the one to use.
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override int Read(Span<byte> buffer)
    {
        byte[] temp = new byte[buffer.Length];
        int n = Read(temp, 0, temp.Length);
        temp.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    private async Task ResumeAsync(CancellationToken ct)
    {
        _resumesLeft--;
        await _inner.DisposeAsync().ConfigureAwait(false);
        _inner = Stream.Null;
        _inner = await _reopen(_position, ct).ConfigureAwait(false);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
