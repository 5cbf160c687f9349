using System.IO.Pipelines;

namespace Hull.Streaming.Spdy;

/// <summary>
/// One SPDY stream as a duplex <see cref="Stream"/>: reads return the peer's DATA (0 after its FIN),
/// writes send DATA within the flow-control window, <see cref="CloseWriteAsync"/> sends FIN.
/// </summary>
public sealed class SpdyStream : DuplexStream
{
    private readonly SpdySession _session;
    private readonly Pipe _inbound = new(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19, useSynchronizationContext: false));
    private readonly TaskCompletionSource<SpdyHeaders> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private int _unacked;
    private int _localFin;
    private int _remoteFin;
    private int _reset;
    private bool _resetLocally;
    /// <summary>Bytes received and not yet read; credited back to the session window when the stream is reset.</summary>
    private long _buffered;

    internal SpdyStream(SpdySession session, uint id, SpdyHeaders headers, bool localFin, bool remoteFin, int sendWindow, bool locallyInitiated)
    {
        _session = session;
        Id = id;
        Headers = headers;
        SendWindow = sendWindow;
        LocallyInitiated = locallyInitiated;
        if (localFin) _localFin = 1;
        if (remoteFin) { _remoteFin = 1; _inbound.Writer.Complete(); }
    }

    public uint Id { get; }

    /// <summary>The headers of the SYN_STREAM that opened the stream.</summary>
    public SpdyHeaders Headers { get; }

    /// <summary>Headers of SYN_REPLY (for streams we opened) and later HEADERS frames.</summary>
    public SpdyHeaders ReplyHeaders { get; } = new();

    public bool LocallyInitiated { get; }
    public bool RemoteClosed => Volatile.Read(ref _remoteFin) != 0;
    public bool LocalClosed => Volatile.Read(ref _localFin) != 0;
    public bool IsReset => Volatile.Read(ref _reset) != 0;
    public SpdyRstStatus? ResetStatus { get; private set; }

    /// <summary>Guarded by the session's flow lock.</summary>
    internal long SendWindow { get; set; }

    internal int AddUnacked(int n) => Interlocked.Add(ref _unacked, n);

    /// <summary>Accepts a peer-opened stream with SYN_REPLY.</summary>
    public async ValueTask ReplyAsync(SpdyHeaders? headers = null, bool fin = false, CancellationToken ct = default)
    {
        if (LocallyInitiated) throw new InvalidOperationException("only a stream the peer opened is replied to");
        if (fin) Interlocked.Exchange(ref _localFin, 1);
        await _session.Writer.WriteAsync(new SpdySynReplyFrame(Id, fin, headers ?? new SpdyHeaders()), ct).ConfigureAwait(false);
        _reply.TrySetResult(headers ?? new SpdyHeaders());
        if (fin) MaybeRemove();
    }

    /// <summary>
    /// Refuses or cancels the stream with RST_STREAM: the peer stops sending, and what it already sent is dropped here
    /// (its bytes credited back to the session window) instead of waiting for a reader that will not come.
    /// </summary>
    public async ValueTask ResetAsync(SpdyRstStatus status = SpdyRstStatus.Cancel)
    {
        if (Interlocked.Exchange(ref _reset, 1) != 0) return;
        ResetStatus = status;
        _resetLocally = true;
        // Only thread-safe pipe calls here: the session's read loop owns the writer, a reader may be waiting.
        _inbound.Writer.CancelPendingFlush();
        _inbound.Reader.CancelPendingRead();
        DropBuffered();
        _session.Remove(this);
        _session.SignalWindow();
        await _session.SendSafeAsync(new SpdyRstStreamFrame(Id, status)).ConfigureAwait(false);
    }

    internal Task WaitForReplyAsync(CancellationToken ct) => _reply.Task.WaitAsync(ct);

    internal void OnReply(SpdyHeaders headers, bool fin)
    {
        ReplyHeaders.AddRange(headers);
        _reply.TrySetResult(headers);
        if (fin) RemoteFinish();
    }

    internal void OnHeaders(SpdyHeaders headers, bool fin)
    {
        ReplyHeaders.AddRange(headers);
        if (fin) RemoteFinish();
    }

    internal async ValueTask OnDataAsync(ReadOnlyMemory<byte> data, bool fin)
    {
        if (RemoteClosed) return;
        if (!data.IsEmpty)
        {
            Interlocked.Add(ref _buffered, data.Length);
            if (IsReset) DropBuffered(); // reset while this frame was in flight
            else
            {
                // Waits while the reader is 1 MiB behind (a peer that ignores flow control); a reset or the end of the
                // session ends the wait.
                try { await _inbound.Writer.WriteAsync(data, _session.Closed).ConfigureAwait(false); }
                catch (Exception e) when (e is InvalidOperationException or OperationCanceledException) { }
            }
        }
        if (fin) RemoteFinish();
    }

    internal void OnReset(SpdyRstStatus status)
    {
        if (Interlocked.Exchange(ref _reset, 1) != 0) return;
        ResetStatus = status;
        var error = new IOException($"SPDY stream {Id} was reset by the peer ({status})");
        _reply.TrySetException(error);
        // After the peer's FIN the data is complete: a reset then only says it stops reading (RST after a full response).
        if (Interlocked.Exchange(ref _remoteFin, 1) == 0)
        {
            _inbound.Writer.Complete(error);
            DropBuffered();
        }
        _session.Remove(this);
        _session.SignalWindow(); // a writer waiting for window learns of the reset
    }

    internal void OnSessionClosed(Exception? reason)
    {
        _reply.TrySetException(new IOException("SPDY session closed", reason));
        if (Interlocked.Exchange(ref _remoteFin, 1) == 0)
            _inbound.Writer.Complete(reason == null ? null : new IOException("SPDY session closed", reason));
    }

    private void DropBuffered() => _session.CreditSession((int)Interlocked.Exchange(ref _buffered, 0));

    private void RemoteFinish()
    {
        if (Interlocked.Exchange(ref _remoteFin, 1) != 0) return;
        _inbound.Writer.Complete();
        MaybeRemove();
    }

    private void MaybeRemove()
    {
        if (RemoteClosed && LocalClosed) _session.Remove(this);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        ReadResult result;
        do
        {
            if (_resetLocally) throw new IOException($"SPDY stream {Id} was reset locally ({ResetStatus})");
            result = await _inbound.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        } while (result.IsCanceled);
        var seq = result.Buffer;
        if (seq.IsEmpty && result.IsCompleted)
        {
            _inbound.Reader.AdvanceTo(seq.End);
            return 0;
        }
        int n = (int)Math.Min(seq.Length, buffer.Length);
        var slice = seq.Slice(0, n);
        System.Buffers.BuffersExtensions.CopyTo(slice, buffer.Span);
        _inbound.Reader.AdvanceTo(slice.End);
        Interlocked.Add(ref _buffered, -n);
        _session.OnConsumed(this, n);
        return n;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (!buffer.IsEmpty)
            {
                if (LocalClosed) throw new IOException($"SPDY stream {Id} is closed for writing");
                int want = Math.Min(buffer.Length, SpdyProtocol.MaxDataChunk);
                int n = await _session.AcquireSendWindowAsync(this, want, cancellationToken).ConfigureAwait(false);
                await _session.Writer.WriteAsync(new SpdyDataFrame(Id, false, buffer[..n]), cancellationToken).ConfigureAwait(false);
                buffer = buffer[n..];
            }
        }
        finally { _writeLock.Release(); }
    }

    /// <summary>Half-closes: sends an empty DATA frame with FIN. Idempotent.</summary>
    public async ValueTask CloseWriteAsync()
    {
        if (IsReset || Interlocked.Exchange(ref _localFin, 1) != 0) return;
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try { await _session.SendSafeAsync(new SpdyDataFrame(Id, true, ReadOnlyMemory<byte>.Empty)).ConfigureAwait(false); }
        finally { _writeLock.Release(); }
        MaybeRemove();
    }


    public override async ValueTask DisposeAsync()
    {
        await CloseWriteAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _ = CloseWriteAsync().AsTask();
        base.Dispose(disposing);
    }
}
