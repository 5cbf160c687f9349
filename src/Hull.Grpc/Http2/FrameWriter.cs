using Hull.Grpc.Telemetry;
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Http2;

/// <summary>
/// Serialises frames onto the connection's output. One lock orders all writers so that a header
/// block (HEADERS + CONTINUATION) is never interleaved with other frames and HPACK state stays in step.
/// A flush is a <c>sendto</c>, so writes are batched as grpc-go's writer batches them: a writer that sees another
/// waiting for the lock leaves its frames for that one's flush, and the read loop's control answers (PING and
/// SETTINGS ACKs) wait for the end of the read buffer or for the response a handler writes next
/// (<see cref="HasDeferredControl"/>, <see cref="FlushAsync"/>).
/// </summary>
public sealed class FrameWriter(PipeWriter output)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly HpackEncoder _encoder = new();
    private readonly ArrayBufferWriter<byte> _headerBlock = new(256);
    private int _peerMaxFrameSize = Http2Limits.DefaultMaxFrameSize;
    private volatile bool _completed;
    private volatile bool _aborted;
    private bool _outputCompleted;
    // Flushes started, and whether one is in progress: the connection's watchdog closes a connection whose peer
    // stopped reading when it sees the same flush pending for too long (no clock read per write).
    private int _flushes;
    private volatile bool _flushing;
    private int _responseSent;
    // Writers waiting for or holding the lock, and whether control frames wait for the read loop's flush.
    private int _writers;
    private volatile bool _deferredControl;

    public int PeerMaxFrameSize => Volatile.Read(ref _peerMaxFrameSize);

    /// <summary>The number of the flush in progress (it is the same one while it stays pending), or null if none is.</summary>
    public int? PendingFlush => _flushing ? Volatile.Read(ref _flushes) : null;

    /// <summary>
    /// True if control frames written without a flush (PING and SETTINGS ACKs) have not gone out yet: the read loop
    /// that wrote them must call <see cref="FlushAsync"/> before it waits for input. (Frames a writer left for a waiting
    /// writer do not count: that writer flushes them.)
    /// </summary>
    public bool HasDeferredControl => _deferredControl;

    /// <summary>True if response headers or data were written since the last call (grpc-go's resetPingStrikes).</summary>
    public bool TakeResponseSent() => Interlocked.Exchange(ref _responseSent, 0) != 0;

    /// <summary>Abandons the write in progress (the peer stopped reading) and drops every later one.</summary>
    public void Abort()
    {
        _aborted = true;
        _completed = true;
        output.CancelPendingFlush();
    }

    public void SetPeerMaxFrameSize(int size) => Volatile.Write(ref _peerMaxFrameSize, size);

    public async ValueTask SetPeerHeaderTableSizeAsync(int size)
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try { _encoder.SetMaxDynamicTableSize(size); }
        finally { _lock.Release(); }
    }

    public ValueTask WriteSettingsAsync(IReadOnlyList<(SettingId Id, uint Value)> settings) =>
        WriteLockedAsync(settings, static (w, s) =>
        {
            var span = w.BeginFrame(s.Count * 6, FrameType.Settings, FrameFlags.None, 0);
            for (int i = 0; i < s.Count; i++)
            {
                BinaryPrimitives.WriteUInt16BigEndian(span[(i * 6)..], (ushort)s[i].Id);
                BinaryPrimitives.WriteUInt32BigEndian(span[(i * 6 + 2)..], s[i].Value);
            }
            w.Advance(s.Count * 6);
        });

    /// <summary>Writes a SETTINGS ACK without flushing it (the read loop flushes: <see cref="HasDeferredControl"/>).</summary>
    public ValueTask WriteSettingsAckAsync() =>
        WriteLockedAsync(0, static (w, _) => w.BeginFrame(0, FrameType.Settings, FrameFlags.Ack, 0), flush: false);

    /// <summary>Writes a PING; an ACK is not flushed (the read loop that answers it flushes: <see cref="HasDeferredControl"/>).</summary>
    public ValueTask WritePingAsync(bool ack, ulong opaque) =>
        WriteLockedAsync((ack, opaque), static (w, s) =>
        {
            var span = w.BeginFrame(8, FrameType.Ping, s.ack ? FrameFlags.Ack : FrameFlags.None, 0);
            BinaryPrimitives.WriteUInt64BigEndian(span, s.opaque);
            w.Advance(8);
        }, flush: !ack);

    /// <summary>Sends what was written and not flushed yet, if anything.</summary>
    public ValueTask FlushAsync() => WriteLockedAsync(0, static (_, _) => { });

    public ValueTask WriteWindowUpdateAsync(int streamId, int increment) =>
        WriteLockedAsync((streamId, increment), static (w, s) =>
        {
            var span = w.BeginFrame(4, FrameType.WindowUpdate, FrameFlags.None, s.streamId);
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)s.increment);
            w.Advance(4);
        });

    public ValueTask WriteRstStreamAsync(int streamId, Http2ErrorCode code) =>
        WriteLockedAsync((streamId, code), static (w, s) =>
        {
            GrpcTelemetry.CountReset(sent: true, s.code);
            var span = w.BeginFrame(4, FrameType.RstStream, FrameFlags.None, s.streamId);
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)s.code);
            w.Advance(4);
        });

    public ValueTask WriteGoAwayAsync(int lastStreamId, Http2ErrorCode code, string debug) =>
        WriteLockedAsync((lastStreamId, code, debug), static (w, s) =>
        {
            GrpcTelemetry.CountGoAway(s.code);
            var debugBytes = System.Text.Encoding.UTF8.GetBytes(s.debug);
            int length = Math.Min(8 + debugBytes.Length, w.PeerMaxFrameSize);
            var span = w.BeginFrame(length, FrameType.GoAway, FrameFlags.None, 0);
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)s.lastStreamId);
            BinaryPrimitives.WriteUInt32BigEndian(span[4..], (uint)s.code);
            debugBytes.AsSpan(0, length - 8).CopyTo(span[8..]);
            w.Advance(length);
        });

    /// <summary>Writes a header block, split into HEADERS + CONTINUATION frames as the peer's frame size requires.</summary>
    public ValueTask WriteHeadersAsync(int streamId, IReadOnlyList<HeaderField> headers, bool endStream) =>
        WriteLockedAsync((streamId, headers, endStream), static (w, s) => w.WriteHeaderBlock(s.streamId, s.headers, s.endStream));

    /// <summary>
    /// Writes response headers (optional), DATA frames and trailers (optional) in one locked pass and one flush.
    /// Empty trailers end the stream with the last DATA frame instead. The caller has already reserved
    /// flow-control window for <paramref name="data"/>.
    /// </summary>
    public ValueTask WriteResponseAsync(int streamId, IReadOnlyList<HeaderField>? headers, ReadOnlyMemory<byte> data,
        IReadOnlyList<HeaderField>? trailers) =>
        WriteLockedAsync((streamId, headers, data, trailers), static (w, s) =>
        {
            Volatile.Write(ref w._responseSent, 1);
            if (s.headers is not null) w.WriteHeaderBlock(s.streamId, s.headers, endStream: false);
            bool endWithData = s.trailers is { Count: 0 };
            w.WriteDataFrames(s.streamId, s.data.Span, endStream: endWithData);
            if (s.trailers is not null && !endWithData) w.WriteHeaderBlock(s.streamId, s.trailers, endStream: true);
        });

    /// <summary>Marks the output finished; later writes are dropped (the connection is going away).</summary>
    public async ValueTask CompleteAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            _completed = true;
            if (_outputCompleted) return;
            _outputCompleted = true;
            // After Abort the peer is not reading: completing with an error drops what is still buffered
            // instead of waiting to flush it.
            await output.CompleteAsync(_aborted ? new IOException("the peer stopped reading") : null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Flushing the last frames failed because the transport is gone (e.g. closed by Http2Server.StopAsync).
        }
        finally { _lock.Release(); }
    }

    private async ValueTask WriteLockedAsync<TState>(TState state, Action<FrameWriter, TState> write, bool flush = true)
    {
        Interlocked.Increment(ref _writers);
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            bool othersWaiting = Interlocked.Decrement(ref _writers) > 0;
            if (_completed) return;
            write(this, state);
            if (output.CanGetUnflushedBytes && output.UnflushedBytes == 0) return; // FlushAsync with nothing to send
            if (!flush)
            {
                _deferredControl = true;
                return;
            }
            // A writer waiting for the lock flushes these frames with its own, in one sendto.
            if (othersWaiting) return;
            _deferredControl = false;
            Volatile.Write(ref _flushes, _flushes + 1);
            _flushing = true;
            if (GrpcTelemetry.SentBytes.Enabled && output.CanGetUnflushedBytes) GrpcTelemetry.SentBytes.Add(output.UnflushedBytes);
            var result = await output.FlushAsync().ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled) _completed = true;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The peer went away; the reader side notices and tears the connection down.
            _completed = true;
        }
        finally
        {
            _flushing = false;
            _lock.Release();
        }
    }

    private Span<byte> BeginFrame(int length, FrameType type, FrameFlags flags, int streamId)
    {
        var span = output.GetSpan(Http2Limits.FrameHeaderLength + length);
        new FrameHeader(length, type, flags, streamId).Write(span);
        output.Advance(Http2Limits.FrameHeaderLength);
        return output.GetSpan(length);
    }

    private void Advance(int count) => output.Advance(count);

    private void WriteHeaderBlock(int streamId, IReadOnlyList<HeaderField> headers, bool endStream)
    {
        _headerBlock.ResetWrittenCount();
        _encoder.Encode(headers, _headerBlock);
        var block = _headerBlock.WrittenSpan;
        int maxFrame = PeerMaxFrameSize;
        var type = FrameType.Headers;
        var baseFlags = endStream ? FrameFlags.EndStream : FrameFlags.None;
        do
        {
            int chunk = Math.Min(block.Length, maxFrame);
            var flags = chunk == block.Length ? FrameFlags.EndHeaders : FrameFlags.None;
            if (type == FrameType.Headers) flags |= baseFlags;
            var span = BeginFrame(chunk, type, flags, streamId);
            block[..chunk].CopyTo(span);
            Advance(chunk);
            block = block[chunk..];
            type = FrameType.Continuation;
        } while (!block.IsEmpty);
    }

    private void WriteDataFrames(int streamId, ReadOnlySpan<byte> data, bool endStream)
    {
        if (data.IsEmpty && !endStream) return;
        int maxFrame = PeerMaxFrameSize;
        do
        {
            int chunk = Math.Min(data.Length, maxFrame);
            var flags = endStream && chunk == data.Length ? FrameFlags.EndStream : FrameFlags.None;
            var span = BeginFrame(chunk, FrameType.Data, flags, streamId);
            data[..chunk].CopyTo(span);
            Advance(chunk);
            data = data[chunk..];
        } while (!data.IsEmpty);
    }
}
