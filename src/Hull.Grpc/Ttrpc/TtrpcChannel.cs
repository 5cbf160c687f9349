namespace Hull.Grpc.Ttrpc;

/// <summary>A received message. <see cref="Oversized"/> messages had their data discarded (it was over the limit).</summary>
public sealed record TtrpcFrame(TtrpcFrameHeader Header, byte[] Payload)
{
    public bool Oversized => Header.Length > TtrpcProtocol.MaxMessageLength;
}

/// <summary>
/// Reads and writes ttrpc messages on a byte stream (a unix socket, a vsock, or one NRI multiplexed connection).
/// Reads happen on one loop; writes are serialized so a message always goes out whole.
/// </summary>
public sealed class TtrpcChannel(Stream stream) : IAsyncDisposable
{
    private readonly byte[] _header = new byte[TtrpcProtocol.HeaderLength];
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public Stream Stream { get; } = stream;

    /// <summary>
    /// The next message, or null at a clean end of stream (between messages). A message over the limit has its
    /// data skipped, as upstream does, so the caller can answer that one stream and go on. A stream that ends
    /// inside a message throws <see cref="EndOfStreamException"/>.
    /// </summary>
    public async Task<TtrpcFrame?> ReadAsync(CancellationToken cancellationToken)
    {
        int read = await Stream.ReadAtLeastAsync(_header, _header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0) return null;
        if (read < _header.Length)
            throw new EndOfStreamException($"ttrpc: connection ended inside a message header ({read} of {TtrpcProtocol.HeaderLength} bytes)");
        var header = TtrpcFrameHeader.Read(_header);
        if (header.Length > TtrpcProtocol.MaxMessageLength)
        {
            await DiscardAsync(header.Length, cancellationToken).ConfigureAwait(false);
            return new TtrpcFrame(header, []);
        }
        var payload = header.Length == 0 ? [] : new byte[header.Length];
        if (payload.Length > 0)
        {
            read = await Stream.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read < payload.Length)
                throw new EndOfStreamException($"ttrpc: connection ended inside a message ({read} of {payload.Length} bytes on stream {header.StreamId})");
        }
        return new TtrpcFrame(header, payload);
    }

    private async Task DiscardAsync(uint length, CancellationToken cancellationToken)
    {
        var scratch = new byte[64 * 1024];
        long left = length;
        while (left > 0)
        {
            int n = await Stream.ReadAsync(scratch.AsMemory(0, (int)Math.Min(left, scratch.Length)), cancellationToken).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException($"ttrpc: connection ended inside an oversized message of {length} bytes");
            left -= n;
        }
    }

    /// <summary>Writes one message in a single write. Data over the limit is refused with ResourceExhausted, as upstream does.</summary>
    public async Task WriteAsync(uint streamId, TtrpcMessageType type, byte flags, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        using var _ = await LockWritesAsync(cancellationToken).ConfigureAwait(false);
        await WriteLockedAsync(streamId, type, flags, payload, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Holds the write lock across allocating a stream id and sending it, so ids go out in increasing order.</summary>
    internal async Task<IDisposable> LockWritesAsync(CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(_writeLock);
    }

    /// <summary>Writes while the caller holds <see cref="LockWritesAsync"/>.</summary>
    internal async Task WriteLockedAsync(uint streamId, TtrpcMessageType type, byte flags, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (payload.Length > TtrpcProtocol.MaxMessageLength) throw new TtrpcMessageTooLargeException(payload.Length);
        // Header and data in one buffer and one write: a multiplexed connection sends each write as its own frame.
        var frame = new byte[TtrpcProtocol.HeaderLength + payload.Length];
        new TtrpcFrameHeader((uint)payload.Length, streamId, type, flags).Write(frame);
        payload.Span.CopyTo(frame.AsSpan(TtrpcProtocol.HeaderLength));
        await Stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
        await Stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        public void Dispose() => semaphore.Release();
    }

    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}
