using System.Buffers;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Http2;

/// <summary>
/// One request/response exchange on a server connection. The connection's read loop feeds the
/// request side; a handler running elsewhere reads the buffered body and sends the response.
/// </summary>
public sealed class Http2Stream
{
    private readonly Http2Connection _connection;
    private readonly CancellationTokenSource _aborted = new();
    // Also the lock of the body buffer, which the read loop fills and the handler releases.
    private readonly TaskCompletionSource<ReadOnlySequence<byte>> _body = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _maxBodyLength;
    // The request body, in an array rented from the shared pool and returned by ReleaseBodyAsync.
    private byte[]? _bodyBuffer;
    private int _bodyLength;
    private bool _bodyReleased;
    private int _responseCompleted;
    private int _resetSent;

    internal Http2Stream(Http2Connection connection, int id, HeaderField[] requestHeaders, long contentLength, long maxBodyLength,
        int peerInitialWindow, int receiveWindow, TimeSpan zeroWindowTimeout)
    {
        _connection = connection;
        Id = id;
        RequestHeaders = requestHeaders;
        ContentLength = contentLength;
        _maxBodyLength = maxBodyLength;
        SendWindow = new FlowWindow(peerInitialWindow) { StallTimeout = zeroWindowTimeout };
        Receive = new ReceiveWindow(receiveWindow, receiveWindow);
        foreach (var h in requestHeaders)
        {
            switch (h.Name)
            {
                case ":method": Method = h.Value; break;
                case ":path": Path = h.Value; break;
                case ":authority": Authority = h.Value; break;
            }
        }
    }

    public int Id { get; }

    /// <summary>When its call's telemetry began (a Stopwatch timestamp), or 0 while telemetry is off.</summary>
    internal long CallStarted { get; set; }

    public IReadOnlyList<HeaderField> RequestHeaders { get; }
    public string Method { get; } = "";
    public string Path { get; } = "";
    public string Authority { get; } = "";
    /// <summary>Who sent the request: the process and user of a unix socket peer, else the address.</summary>
    public string Peer => _connection.Peer;
    /// <summary>Cancelled when the peer resets the stream or the connection ends.</summary>
    public CancellationToken Aborted => _aborted.Token;
    public bool ResponseCompleted => Volatile.Read(ref _responseCompleted) != 0;
    /// <summary>
    /// True once response headers went out. They travel with the first DATA, so a send that waits for
    /// flow-control window (and is then cancelled) may not have sent them yet.
    /// </summary>
    internal bool HeadersSent { get; private set; }

    internal FlowWindow SendWindow { get; }
    internal bool RequestCompleted { get; private set; }
    /// <summary>Closed as far as the peer's frames go, while the last response frame is still being written.</summary>
    internal bool ClosedForPeer { get; set; }
    /// <summary>The request's content-length header, or -1; DATA must add up to it (RFC 9113 8.1.1).</summary>
    internal long ContentLength { get; }
    /// <summary>DATA payload octets received so far, padding excluded, kept or not.</summary>
    internal long DataReceived { get; set; }
    /// <summary>When the request last made progress (Environment.TickCount64): its HEADERS or a DATA frame.</summary>
    internal long BodyProgressAt { get; set; }
    /// <summary>The stream's receive window; the read loop owns it.</summary>
    internal ReceiveWindow Receive;

    public string? GetHeader(string name)
    {
        foreach (var h in RequestHeaders)
            if (h.Name == name) return h.Value;
        return null;
    }

    /// <summary>
    /// The whole request body, available once the peer ends the stream. Fails with <see cref="RequestBodyTooLargeException"/>
    /// beyond the limit, <see cref="RequestBufferFullException"/> when the server holds too many request bytes, and
    /// <see cref="RequestBodyTimeoutException"/> when the body stops arriving. Valid until <see cref="ReleaseBodyAsync"/>.
    /// </summary>
    public Task<ReadOnlySequence<byte>> ReadBodyAsync() => _body.Task;

    /// <summary>
    /// Hands the body's memory back (the sequence from <see cref="ReadBodyAsync"/> must not be used after this), which
    /// lets the peer send that much more on the connection. Later request DATA is dropped. Called once the handler has
    /// parsed the request, and by the connection when the handler returns.
    /// </summary>
    public ValueTask ReleaseBodyAsync()
    {
        int released;
        if (Volatile.Read(ref _bodyReleased)) return ValueTask.CompletedTask; // the usual second call, from the connection
        lock (_body)
        {
            if (_bodyReleased) return ValueTask.CompletedTask;
            _bodyReleased = true;
            released = DropBodyBuffer();
        }
        if (released == 0) return ValueTask.CompletedTask;
        _connection.Budget.Release(released);
        return _connection.CreditConnectionAsync(released);
    }

    /// <summary>Sends headers and/or data and/or trailers, honouring the peer's flow-control windows.</summary>
    public async ValueTask SendAsync(IReadOnlyList<HeaderField>? headers, ReadOnlyMemory<byte> data, IReadOnlyList<HeaderField>? trailers,
        CancellationToken cancellationToken = default)
    {
        if (ResponseCompleted) return;
        while (data.Length > 0)
        {
            int credit = await TakeCreditAsync(data.Length, cancellationToken).ConfigureAwait(false);
            var chunk = data[..credit];
            data = data[credit..];
            bool last = data.IsEmpty;
            if (last && trailers is not null) BeginFinalWrite();
            await _connection.Writer.WriteResponseAsync(Id, headers, chunk, last ? trailers : null).ConfigureAwait(false);
            if (headers is not null) HeadersSent = true;
            headers = null;
            if (last && trailers is not null) { _connection.OnResponseCompleted(this); return; }
        }
        if (headers is null && trailers is null) return;
        if (trailers is not null) BeginFinalWrite();
        await _connection.Writer.WriteResponseAsync(Id, headers, ReadOnlyMemory<byte>.Empty, trailers).ConfigureAwait(false);
        if (headers is not null) HeadersSent = true;
        if (trailers is not null) _connection.OnResponseCompleted(this);
    }

    /// <summary>
    /// The frame ending the response is about to go out. If the request is over too, the stream is closed for the
    /// peer from now on: whatever it sends once it sees END_STREAM must find the stream closed, not half-open.
    /// </summary>
    private void BeginFinalWrite()
    {
        MarkResponseCompleted();
        if (RequestCompleted) _connection.CloseForPeer(this);
    }

    /// <summary>Takes window from the stream, then the connection; a peer that grants none for too long loses the stream.</summary>
    private async ValueTask<int> TakeCreditAsync(int wanted, CancellationToken cancellationToken)
    {
        try
        {
            // Aborting the stream aborts its window, so only the caller's token needs watching.
            int streamCredit = await SendWindow.TakeAsync(wanted, cancellationToken).ConfigureAwait(false);
            int credit;
            try { credit = await _connection.SendWindow.TakeAsync(streamCredit, cancellationToken).ConfigureAwait(false); }
            catch { SendWindow.Return(streamCredit); throw; }
            SendWindow.Return(streamCredit - credit);
            return credit;
        }
        catch (FlowControlStallException e)
        {
            _connection.OnStreamStalled(this, e);
            await ResetAsync(Http2ErrorCode.Cancel).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Abandons the exchange with RST_STREAM. The stream is closed before the frame goes out, so the peer never finds it open after seeing it.</summary>
    public async ValueTask ResetAsync(Http2ErrorCode code)
    {
        MarkResponseCompleted();
        bool first = Interlocked.Exchange(ref _resetSent, 1) == 0;
        _connection.OnStreamReset(this, sentByUs: true);
        if (first) await _connection.Writer.WriteRstStreamAsync(Id, code).ConfigureAwait(false);
    }

    private bool MarkResponseCompleted() => Interlocked.Exchange(ref _responseCompleted, 1) == 0;

    // ---- called by the connection's read loop (and its watchdog) ----

    internal bool IsAborted => _aborted.IsCancellationRequested;

    /// <summary>
    /// Buffers request DATA against the server's request buffer budget. Returns how many octets are not held (so
    /// the connection window can be granted again for them at once): 0 when the data was kept; the data plus what was
    /// buffered before when the body fails here (too large, no budget), or the data when it was already over.
    /// </summary>
    internal int AppendBody(ReadOnlySequence<byte> data)
    {
        int length = (int)data.Length;
        var budget = _connection.Budget;
        lock (_body)
        {
            if (_bodyReleased || _body.Task.IsCompleted) return length;
            Exception? failure = null;
            if (_bodyLength + (long)length > _maxBodyLength) failure = new RequestBodyTooLargeException(_maxBodyLength);
            else if (!budget.TryReserve(length)) failure = new RequestBufferFullException(budget.Limit);
            if (failure is not null)
            {
                FailBody(failure);
                int held = DropBodyBuffer();
                budget.Release(held);
                return length + held;
            }
            EnsureCapacity(_bodyLength + length);
            data.CopyTo(_bodyBuffer.AsSpan(_bodyLength));
            _bodyLength += length;
            return 0;
        }
    }

    internal void CompleteRequest()
    {
        RequestCompleted = true;
        lock (_body)
        {
            var bytes = _bodyBuffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_bodyBuffer, 0, _bodyLength);
            _body.TrySetResult(bytes);
        }
    }

    /// <summary>The body stopped arriving: the handler waiting for it gets <see cref="RequestBodyTimeoutException"/>. False if it had already failed.</summary>
    internal bool TimeOutBody(TimeSpan timeout) => FailBody(new RequestBodyTimeoutException(Id, timeout));

    internal void Abort()
    {
        RequestCompleted = true;
        MarkResponseCompleted();
        FailBody(new OperationCanceledException($"HTTP/2 stream {Id} was reset"));
        SendWindow.Abort();
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
    }

    private bool FailBody(Exception e)
    {
        // Reading Exception marks it observed: a handler that answered without reading the body (UNIMPLEMENTED,
        // a deadline) never awaits it, and that must not surface as UnobservedTaskException.
        if (!_body.TrySetException(e)) return false;
        _ = _body.Task.Exception;
        return true;
    }

    private void EnsureCapacity(int needed)
    {
        if (_bodyBuffer is not null && _bodyBuffer.Length >= needed) return;
        int size = (int)Math.Min(Math.Max(needed, Math.Max(256, (_bodyBuffer?.Length ?? 0) * 2L)), Math.Max(needed, _maxBodyLength));
        var grown = ArrayPool<byte>.Shared.Rent(size);
        if (_bodyBuffer is not null)
        {
            _bodyBuffer.AsSpan(0, _bodyLength).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_bodyBuffer);
        }
        _bodyBuffer = grown;
    }

    /// <summary>Returns the buffer to the pool; the caller holds the lock. Returns the octets it held.</summary>
    private int DropBodyBuffer()
    {
        int held = _bodyLength;
        if (_bodyBuffer is not null) ArrayPool<byte>.Shared.Return(_bodyBuffer);
        _bodyBuffer = null;
        _bodyLength = 0;
        return held;
    }
}

/// <summary>The request body went past the receive limit.</summary>
public sealed class RequestBodyTooLargeException(long limit)
    : Exception($"request body exceeds the limit of {limit} octets")
{
    public long Limit { get; } = limit;
}

/// <summary>The server already holds as many request bytes as it may (Http2ServerOptions.MaxBufferedRequestBytes).</summary>
public sealed class RequestBufferFullException(long limit)
    : Exception($"the server is already holding its limit of {limit} octets of request bodies; retry later")
{
    public long Limit { get; } = limit;
}

/// <summary>The request body made no progress for Http2ServerOptions.RequestBodyTimeout.</summary>
public sealed class RequestBodyTimeoutException(int streamId, TimeSpan timeout)
    : Exception($"the request body of stream {streamId} made no progress for {Http2Connection.Seconds(timeout)}")
{
    public TimeSpan Timeout { get; } = timeout;
}
