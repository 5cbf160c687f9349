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
    private readonly TaskCompletionSource<ReadOnlySequence<byte>> _body = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ArrayBufferWriter<byte>? _bodyBuffer;
    private readonly long _maxBodyLength;
    private int _responseCompleted;
    private int _resetSent;

    internal Http2Stream(Http2Connection connection, int id, HeaderField[] requestHeaders, long maxBodyLength, int peerInitialWindow)
    {
        _connection = connection;
        Id = id;
        RequestHeaders = requestHeaders;
        _maxBodyLength = maxBodyLength;
        SendWindow = new FlowWindow(peerInitialWindow);
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
    public IReadOnlyList<HeaderField> RequestHeaders { get; }
    public string Method { get; } = "";
    public string Path { get; } = "";
    public string Authority { get; } = "";
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
    /// <summary>Octets of receive window the peer may still use on this stream.</summary>
    internal long ReceiveWindow { get; set; }
    internal int UnacknowledgedReceived { get; set; }

    public string? GetHeader(string name)
    {
        foreach (var h in RequestHeaders)
            if (h.Name == name) return h.Value;
        return null;
    }

    /// <summary>The whole request body, available once the peer ends the stream; fails with <see cref="RequestBodyTooLargeException"/> beyond the limit.</summary>
    public Task<ReadOnlySequence<byte>> ReadBodyAsync() => _body.Task;

    /// <summary>Sends headers and/or data and/or trailers, honouring the peer's flow-control windows.</summary>
    public async ValueTask SendAsync(IReadOnlyList<HeaderField>? headers, ReadOnlyMemory<byte> data, IReadOnlyList<HeaderField>? trailers,
        CancellationToken cancellationToken = default)
    {
        if (ResponseCompleted) return;
        while (data.Length > 0)
        {
            // Aborting the stream aborts its window, so only the caller's token needs watching.
            int streamCredit = await SendWindow.TakeAsync(data.Length, cancellationToken).ConfigureAwait(false);
            int credit;
            try { credit = await _connection.SendWindow.TakeAsync(streamCredit, cancellationToken).ConfigureAwait(false); }
            catch { SendWindow.Return(streamCredit); throw; }
            SendWindow.Return(streamCredit - credit);
            var chunk = data[..credit];
            data = data[credit..];
            bool last = data.IsEmpty;
            if (last && trailers is not null) MarkResponseCompleted();
            await _connection.Writer.WriteResponseAsync(Id, headers, chunk, last ? trailers : null).ConfigureAwait(false);
            if (headers is not null) HeadersSent = true;
            headers = null;
            if (last && trailers is not null) { _connection.OnResponseCompleted(this); return; }
        }
        if (headers is null && trailers is null) return;
        if (trailers is not null) MarkResponseCompleted();
        await _connection.Writer.WriteResponseAsync(Id, headers, ReadOnlyMemory<byte>.Empty, trailers).ConfigureAwait(false);
        if (headers is not null) HeadersSent = true;
        if (trailers is not null) _connection.OnResponseCompleted(this);
    }

    /// <summary>Abandons the exchange with RST_STREAM.</summary>
    public async ValueTask ResetAsync(Http2ErrorCode code)
    {
        MarkResponseCompleted();
        if (Interlocked.Exchange(ref _resetSent, 1) == 0) await _connection.Writer.WriteRstStreamAsync(Id, code).ConfigureAwait(false);
        _connection.OnStreamReset(this, sentByUs: true);
    }

    private bool MarkResponseCompleted() => Interlocked.Exchange(ref _responseCompleted, 1) == 0;

    // ---- called by the connection's read loop ----

    /// <summary>Buffers request DATA; returns false once the body outgrew its limit (the octets are dropped).</summary>
    internal bool AppendBody(ReadOnlySequence<byte> data)
    {
        if (_body.Task.IsCompleted) return false;
        _bodyBuffer ??= new ArrayBufferWriter<byte>((int)Math.Min(Math.Max(data.Length, 256), 1 << 20));
        if (_bodyBuffer.WrittenCount + data.Length > _maxBodyLength)
        {
            _bodyBuffer = null;
            FailBody(new RequestBodyTooLargeException(_maxBodyLength));
            return false;
        }
        foreach (var segment in data) _bodyBuffer.Write(segment.Span);
        return true;
    }

    internal void CompleteRequest()
    {
        RequestCompleted = true;
        var bytes = _bodyBuffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_bodyBuffer.WrittenMemory);
        _body.TrySetResult(bytes);
    }

    internal void Abort()
    {
        RequestCompleted = true;
        MarkResponseCompleted();
        FailBody(new OperationCanceledException($"HTTP/2 stream {Id} was reset"));
        SendWindow.Abort();
        try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
    }

    private void FailBody(Exception e)
    {
        // Reading Exception marks it observed: a handler that answered without reading the body (415,
        // UNIMPLEMENTED, a deadline) never awaits it, and that must not surface as UnobservedTaskException.
        if (_body.TrySetException(e)) _ = _body.Task.Exception;
    }
}

/// <summary>The request body went past the receive limit.</summary>
public sealed class RequestBodyTooLargeException(long limit)
    : Exception($"request body exceeds the limit of {limit} octets")
{
    public long Limit { get; } = limit;
}
