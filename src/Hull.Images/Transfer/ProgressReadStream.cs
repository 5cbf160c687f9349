namespace Hull.Images.Transfer;

/// <summary>
/// A read-only view of a stream that reports its position after every read. Seeking is passed
/// through (a retried upload rewinds), so the report is always "bytes read so far from the start".
/// </summary>
internal sealed class ProgressReadStream(Stream inner, Action<long> report, bool leaveOpen = true) : Stream
{
    private long _position = inner.CanSeek ? inner.Position : 0;

    public override bool CanRead => true;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => false;
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.CanSeek ? inner.Position : _position;
        set
        {
            inner.Position = value;
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Advance(inner.Read(buffer, offset, count));

    public override int Read(Span<byte> buffer) => Advance(inner.Read(buffer));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Advance(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Advance(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false));

    private int Advance(int read)
    {
        if (read > 0)
        {
            _position += read;
            report(Position);
        }
        return read;
    }

    public override long Seek(long offset, SeekOrigin origin) => _position = inner.Seek(offset, origin);

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!leaveOpen) await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
