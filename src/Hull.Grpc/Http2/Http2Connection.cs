using Hull.Grpc.Telemetry;
using System.Buffers;
using System.IO.Pipelines;
using Hull.Grpc.Hpack;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Grpc.Http2;

/// <summary>Runs the request of one stream; invoked once the request headers are complete.</summary>
public delegate Task Http2RequestHandler(Http2Stream stream);

/// <summary>
/// The server side of one HTTP/2 connection (RFC 9113): a single read loop parses frames and keeps
/// the stream table; handlers run concurrently and write through the shared <see cref="FrameWriter"/>.
/// A watchdog enforces the time limits of <see cref="Http2ServerOptions"/> and sends keepalive PINGs.
/// </summary>
public sealed partial class Http2Connection
{
    private readonly PipeReader _input;
    private readonly Http2ServerOptions _options;
    private readonly Http2RequestHandler _handler;
    private readonly long _maxRequestBody;
    private readonly ILogger _log;
    private readonly string _peer;
    private readonly HpackDecoder _decoder;
    private readonly Dictionary<int, Http2Stream> _streams = new();
    private readonly HashSet<int> _resetByUs = new();
    private readonly HashSet<int> _closedStreams = new(); // recently closed, to tell reuse (STREAM_CLOSED) from a skipped id
    private int _closedForPeer; // streams in _streams whose last frame is being written: not open as far as the peer knows
    private readonly List<HeaderField> _headerScratch = new();
    // Streams whose request headers arrived in the read buffer being processed; their handlers start once it is done.
    private readonly List<Http2Stream> _ready = new();
    // Set if the transport hands a held receiving thread's work over to a new one (SocketTransport): the read loop's
    // thread may then run every ready handler itself, and those it has not started when held go to the thread pool.
    private readonly bool _runsBatchesInline;
    private InlineBatch? _inlineBatch;
    // Ends (or fails) when the read loop does, whichever invocation of ReadFramesAsync runs it by then.
    private readonly TaskCompletionSource _readingDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closed = new();

    // Request bytes the peer may send on the connection; granted again only as handlers release buffered bodies,
    // so it bounds what one connection makes the server hold. Read loop and handlers share it under the lock.
    private readonly object _receiveGate = new();
    private ReceiveWindow _receiveWindow;
    // Handlers still running, including those of streams already reset: Kestrel's "tracked streams", bounded at
    // twice MaxConcurrentStreams so reset streams cannot pile up handlers.
    private int _runningHandlers;
    private TokenBucket _streamResets;
    private TokenBucket _settingsFrames;
    private PingPolicy _pings;
    private int _closeLogged;

    private int _lastStreamId;
    private int _peerInitialWindow = Http2Limits.DefaultInitialWindowSize;
    private bool _goingAway;
    private readonly long _openedAt = Environment.TickCount64;
    private long _lastFrameTicks = Environment.TickCount64;
    private long _receivedBytes; // of the read buffer being processed; counted once per buffer
    private long _pendingPing = -1;
    private volatile bool _settingsSeen;

    // A header block in progress across CONTINUATION frames (or in several buffer segments); reused.
    private ArrayBufferWriter<byte> _headerBlockBuffer = new(256);
    private ArrayBufferWriter<byte>? _headerBlock;
    private FrameHeader _headerBlockStart;
    private int _continuationFrames;
    private long _headerBlockStartedAt; // 0 unless a block waits for CONTINUATION frames

    public Http2Connection(IDuplexPipe transport, Http2ServerOptions options, long maxRequestBody, Http2RequestHandler handler,
        ILogger? logger = null)
        : this(transport, options, maxRequestBody, handler, new RequestBufferBudget(options.MaxBufferedRequestBytes), logger, "peer")
    {
    }

    internal Http2Connection(IDuplexPipe transport, Http2ServerOptions options, long maxRequestBody, Http2RequestHandler handler,
        RequestBufferBudget budget, ILogger? logger, string peer)
    {
        _input = transport.Input;
        _options = options;
        _handler = handler;
        _maxRequestBody = maxRequestBody;
        _log = logger ?? NullLogger.Instance;
        _peer = peer;
        Budget = budget;
        _decoder = new HpackDecoder(options.HeaderTableSize, options.MaxHeaderListSize);
        Writer = new FrameWriter(transport.Output);
        SendWindow = new FlowWindow(Http2Limits.DefaultInitialWindowSize) { StallTimeout = options.ZeroWindowTimeout };
        // A request of the maximum size must always fit, or it could never complete, and so must one frame more, or a
        // request over the limit would stall one octet short of showing it (instead of failing RESOURCE_EXHAUSTED).
        long fits = maxRequestBody + options.MaxFrameSize;
        int connectionWindow = (int)Math.Clamp(Math.Max(options.ConnectionWindowSize, fits), Http2Limits.DefaultInitialWindowSize, Http2Limits.MaxWindowSize);
        _receiveWindow = new ReceiveWindow(connectionWindow, Http2Limits.DefaultInitialWindowSize);
        _streamResets = new TokenBucket(options.StreamResetRate);
        _settingsFrames = new TokenBucket(options.SettingsRate);
        _pings = new PingPolicy(options);
        if (transport is IHandsOverReceiving handsOver)
        {
            handsOver.HandedOver = OnReceivingHandedOver;
            _runsBatchesInline = true;
        }
    }

    internal FrameWriter Writer { get; }
    internal FlowWindow SendWindow { get; }
    internal RequestBufferBudget Budget { get; }
    public int ActiveStreams { get { lock (_streams) return _streams.Count; } }

    /// <summary>The streams open now (a snapshot).</summary>
    public IReadOnlyList<Http2Stream> OpenStreams { get { lock (_streams) return _streams.Values.ToArray(); } }

    /// <summary>Who is on the other end (for logs and the debug endpoint): the process and user of a unix socket peer, else the address.</summary>
    public string Peer => _peer;

    /// <summary>When the connection was accepted.</summary>
    public DateTimeOffset OpenedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Serves the connection until the peer closes it, a connection error occurs, or shutdown completes.</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        using var stop = cancellationToken.Register(() => _closed.Cancel());
        var watchdog = Task.CompletedTask;
        try
        {
            if (!await ReadPrefaceAsync().ConfigureAwait(false)) return;
            var settings = new List<(SettingId, uint)>
            {
                (SettingId.MaxConcurrentStreams, (uint)_options.MaxConcurrentStreams),
                (SettingId.InitialWindowSize, (uint)_options.StreamWindowSize),
                (SettingId.MaxHeaderListSize, (uint)_options.MaxHeaderListSize),
                (SettingId.HeaderTableSize, (uint)_options.HeaderTableSize),
            };
            // Frames up to MaxFrameSize are accepted, so the peer must be told when that exceeds the default.
            if (_options.MaxFrameSize != Http2Limits.DefaultMaxFrameSize) settings.Add((SettingId.MaxFrameSize, (uint)_options.MaxFrameSize));
            await Writer.WriteSettingsAsync(settings).ConfigureAwait(false);
            int connectionBoost;
            lock (_receiveGate) connectionBoost = _receiveWindow.Flush();
            if (connectionBoost > 0) await Writer.WriteWindowUpdateAsync(0, connectionBoost).ConfigureAwait(false);
            // Keepalive and the other timers start once the peer speaks HTTP/2: nothing may precede the server's SETTINGS.
            watchdog = WatchdogAsync();
            _ = ReadFramesAsync(_input.ReadAsync(_closed.Token));
            await _readingDone.Task.ConfigureAwait(false);
        }
        catch (Http2ConnectionException e)
        {
            LogClose(e.Code == Http2ErrorCode.EnhanceYourCalm ? LogLevel.Warning : LogLevel.Information, e.Code, e.Message);
            await Writer.WriteGoAwayAsync(_lastStreamId, e.Code, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            _closed.Cancel();
            AbortAllStreams();
            await Writer.CompleteAsync().ConfigureAwait(false);
            await _input.CompleteAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Graceful shutdown: GOAWAY tells the peer which streams will be processed, in-flight streams get
    /// until <paramref name="drainTimeout"/> to finish, then the connection is closed.
    /// </summary>
    public async Task ShutdownAsync(TimeSpan drainTimeout)
    {
        int last;
        lock (_streams)
        {
            _goingAway = true;
            last = _lastStreamId;
            if (_streams.Count == 0) _drained.TrySetResult();
        }
        await Writer.WriteGoAwayAsync(last, Http2ErrorCode.NoError, "server shutting down").ConfigureAwait(false);
        await Task.WhenAny(_drained.Task, Task.Delay(drainTimeout)).ConfigureAwait(false);
        Close();
    }

    private async Task<bool> ReadPrefaceAsync()
    {
        var preface = Http2Limits.ClientPreface.ToArray();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        deadline.CancelAfter(_options.PrefaceTimeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_closed.IsCancellationRequested)
            {
                LogClose(LogLevel.Information, null, $"no HTTP/2 connection preface within {Seconds(_options.PrefaceTimeout)}");
                GrpcTelemetry.CountTimeout("preface");
                return false;
            }
            var buffer = result.Buffer;
            if (buffer.Length >= preface.Length)
            {
                var received = buffer.Slice(0, preface.Length).ToArray();
                if (!received.AsSpan().SequenceEqual(preface))
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "invalid HTTP/2 connection preface");
                _input.AdvanceTo(buffer.GetPosition(preface.Length));
                return true;
            }
            // Reject early: a peer speaking HTTP/1.1 or TLS never sends the rest of the preface.
            var partial = buffer.ToArray();
            if (!preface.AsSpan(0, partial.Length).SequenceEqual(partial))
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "invalid HTTP/2 connection preface");
            if (result.IsCompleted) return false;
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// The read loop, starting with <paramref name="read"/>. Handlers of streams opened by a read buffer start
    /// once the whole buffer is processed (so a unary request's body is usually complete by then). When the
    /// next read is still pending, the loop continues in a new invocation that awaits it, and this thread runs
    /// ready handlers itself, each until its first await: a call then costs no thread-pool hop between the read
    /// loop and the handler, yet a handler that blocks does not hold up the connection, which goes on reading
    /// elsewhere. Which handlers this thread runs: all of them if the transport hands a held thread's receiving
    /// over (<see cref="IHandsOverReceiving"/>: reading goes on after a few milliseconds, and the handlers not
    /// started yet go to the thread pool), else the last one, the others going to the thread pool at once (reading
    /// goes on as soon as the peer sends more).
    /// </summary>
    private async Task ReadFramesAsync(ValueTask<ReadResult> read)
    {
        // Few locals here: this method is what a handoff allocates, once per unary call; the buffer is parsed
        // by ProcessBufferAsync, which usually completes synchronously and allocates nothing.
        Http2Stream? inline = null;
        InlineBatch? batch = null;
        try
        {
            while (true)
            {
                var result = await read.ConfigureAwait(false);
                if (result.IsCanceled) return;
                bool completed = result.IsCompleted;
                await ProcessBufferAsync(result.Buffer).ConfigureAwait(false);
                if (completed) return;
                read = _input.ReadAsync(_closed.Token);
                if (_ready.Count == 0 || read.IsCompleted)
                {
                    // The control frames answered from this buffer (PING and SETTINGS ACKs) go out together.
                    if (Writer.HasDeferredControl) await Writer.FlushAsync().ConfigureAwait(false);
                    continue;
                }
                if (_ready.Count > 1 && _runsBatchesInline)
                {
                    Volatile.Write(ref _inlineBatch, batch = new InlineBatch(_ready.ToArray()));
                    _ready.Clear();
                }
                else
                {
                    inline = _ready[^1];
                    _ready.RemoveAt(_ready.Count - 1);
                    DispatchReady();
                }
                _ = ReadFramesAsync(read); // suspends at once on the pending read
                break;
            }
        }
        catch (Exception e)
        {
            _readingDone.TrySetException(e);
        }
        finally
        {
            // After a handoff the loop's state (_ready included) belongs to the new invocation: hands off.
            if (inline is null && batch is null)
            {
                DispatchReady();
                _readingDone.TrySetResult();
            }
        }
        if (inline is null && batch is null) return;
        if (inline is not null) _ = RunHandlerAsync(inline);
        else while (batch!.Take() is { } stream) _ = RunHandlerAsync(stream);
        // The first response carries the control frames answered from the buffer (one sendto per call where grpc-go
        // sends a PING after each response); handlers that went async before answering must not hold them.
        if (Writer.HasDeferredControl) _ = Writer.FlushAsync();
    }

    /// <summary>The transport gave receiving to a new thread because the read loop's was held: what it has not started goes to the thread pool.</summary>
    private void OnReceivingHandedOver()
    {
        if (Volatile.Read(ref _inlineBatch) is not { } batch) return;
        while (batch.Take() is { } stream) Dispatch(stream);
    }

    /// <summary>Ready handlers one thread runs in turn; each is taken once, by that thread or by a hand-over.</summary>
    private sealed class InlineBatch(Http2Stream[] streams)
    {
        private int _next = -1;

        public Http2Stream? Take()
        {
            int i = Interlocked.Increment(ref _next);
            return i < streams.Length ? streams[i] : null;
        }
    }

    /// <summary>Processes the complete frames of <paramref name="buffer"/> and advances the input past them.</summary>
    private async ValueTask ProcessBufferAsync(ReadOnlySequence<byte> buffer)
    {
        try
        {
            // One clock read per read buffer serves keepalive and the progress of every stream it feeds.
            Volatile.Write(ref _lastFrameTicks, Environment.TickCount64);
            while (FrameReader.TryReadFrame(ref buffer, _options.MaxFrameSize, out var header, out var payload))
            {
                _receivedBytes += Http2Limits.FrameHeaderLength + header.Length;
                if (!_settingsSeen)
                {
                    if (header.Type != FrameType.Settings)
                        throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "the first frame after the preface must be SETTINGS");
                    _settingsSeen = true;
                }
                try
                {
                    await ProcessFrameAsync(header, payload).ConfigureAwait(false);
                }
                catch (Http2StreamException e)
                {
                    await ResetStreamAsync(e.StreamId, e.Code).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _input.AdvanceTo(buffer.Start, buffer.End);
            if (_receivedBytes > 0 && GrpcTelemetry.ReceivedBytes.Enabled) GrpcTelemetry.ReceivedBytes.Add(_receivedBytes);
            _receivedBytes = 0;
        }
    }

    private void DispatchReady()
    {
        foreach (var stream in _ready) Dispatch(stream);
        _ready.Clear();
    }

    private void Dispatch(Http2Stream stream) =>
        ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.connection.RunHandlerAsync(s.stream), (connection: this, stream), preferLocal: false);

    private ValueTask ProcessFrameAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (_headerBlock is not null && header.Type != FrameType.Continuation)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError,
                $"expected CONTINUATION for stream {_headerBlockStart.StreamId}, got {header.Type}");
        return header.Type switch
        {
            FrameType.Data => OnDataAsync(header, payload),
            FrameType.Headers => OnHeadersAsync(header, payload),
            FrameType.Continuation => OnContinuationAsync(header, payload),
            FrameType.Priority => OnPriority(header, payload),
            FrameType.RstStream => OnRstStream(header, payload),
            FrameType.Settings => OnSettingsAsync(header, payload),
            FrameType.PushPromise => throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "clients must not send PUSH_PROMISE"),
            FrameType.Ping => OnPingAsync(header, payload),
            FrameType.GoAway => OnGoAway(header, payload),
            FrameType.WindowUpdate => OnWindowUpdateAsync(header, payload),
            _ => ValueTask.CompletedTask, // unknown frame types are ignored (RFC 9113 4.1)
        };
    }

    private async ValueTask OnDataAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId == 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "DATA frame on stream 0");
        // Flow control counts the whole frame, padding included (RFC 9113 6.9.1).
        bool fits;
        lock (_receiveGate) fits = _receiveWindow.TryReceive(header.Length);
        if (!fits)
            throw new Http2ConnectionException(Http2ErrorCode.FlowControlError,
                $"DATA of {header.Length} octets exceeds the connection receive window of {ConnectionReceiveWindow()}");

        var data = FrameReader.RemovePadding(header, payload);
        var stream = Find(header.StreamId);
        if (stream is null || stream.RequestCompleted || !stream.Receive.TryReceive(header.Length))
        {
            await CreditConnectionAsync(header.Length).ConfigureAwait(false); // nothing of it is kept
            RejectData(header, stream);
            return;
        }
        stream.BodyProgressAt = _lastFrameTicks;
        stream.DataReceived += data.Length;
        bool endStream = header.Has(FrameFlags.EndStream);
        // Padding is never kept; the data is, until the handler releases the body, unless the stream gave it up.
        int notKept = header.Length - (int)data.Length;
        if (ContentLengthMismatch(stream, endStream) is { } mismatch)
        {
            await CreditConnectionAsync(header.Length).ConfigureAwait(false);
            throw new Http2StreamException(stream.Id, Http2ErrorCode.ProtocolError, mismatch);
        }
        int givenUp = data.Length == 0 ? 0 : stream.AppendBody(data);
        // Even with nothing to give back, credit held pending may be due now that the window has shrunk.
        await CreditConnectionAsync(notKept + givenUp).ConfigureAwait(false);
        if (endStream)
        {
            stream.CompleteRequest();
            CloseIfDone(stream);
            return;
        }
        if (givenUp > 0) return; // the handler answers RESOURCE_EXHAUSTED; no more window for this stream
        int increment = stream.Receive.Consume(header.Length);
        if (increment > 0) await Writer.WriteWindowUpdateAsync(stream.Id, increment).ConfigureAwait(false);
    }

    /// <summary>DATA that no open stream can take: says why, as a stream or connection error, or drops it quietly.</summary>
    private void RejectData(FrameHeader header, Http2Stream? stream)
    {
        if (stream is null)
        {
            if (header.StreamId > _lastStreamId)
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"DATA frame on idle stream {header.StreamId}");
            if (WasResetByUs(header.StreamId)) return;
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.StreamClosed, $"DATA frame on closed stream {header.StreamId}");
        }
        if (stream.RequestCompleted)
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.StreamClosed, $"DATA frame after END_STREAM on stream {header.StreamId}");
        throw new Http2StreamException(header.StreamId, Http2ErrorCode.FlowControlError,
            $"DATA of {header.Length} octets exceeds stream {header.StreamId}'s receive window of {stream.Receive.Available}");
    }

    /// <summary>RFC 9113 8.1.1: DATA must add up to the content-length the request announced.</summary>
    private static string? ContentLengthMismatch(Http2Stream stream, bool endStream)
    {
        if (stream.ContentLength < 0) return null;
        if (stream.DataReceived > stream.ContentLength || (endStream && stream.DataReceived != stream.ContentLength))
            return $"stream {stream.Id} announced content-length {stream.ContentLength} but sent {(endStream ? "" : "at least ")}{stream.DataReceived} octets of DATA";
        return null;
    }

    /// <summary>Request bytes no longer held (released by a handler, dropped, or padding): the peer may send that much more.</summary>
    internal ValueTask CreditConnectionAsync(int bytes)
    {
        int increment;
        lock (_receiveGate) increment = _receiveWindow.Consume(bytes);
        return increment == 0 ? ValueTask.CompletedTask : Writer.WriteWindowUpdateAsync(0, increment);
    }

    private long ConnectionReceiveWindow()
    {
        lock (_receiveGate) return _receiveWindow.Available;
    }

    private ValueTask OnHeadersAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId == 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "HEADERS frame on stream 0");
        var fragment = FrameReader.RemovePadding(header, payload);
        if (header.Has(FrameFlags.Priority))
        {
            if (fragment.Length < 5)
                throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "HEADERS frame too short for its priority fields");
            // A connection error (as Kestrel does) rather than a stream error: the header block is not decoded,
            // so the HPACK state could not be kept in step.
            if ((FrameReader.ReadUInt32(fragment, 0) & 0x7FFF_FFFF) == header.StreamId)
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"stream {header.StreamId} depends on itself");
            fragment = fragment.Slice(5);
        }
        _headerBlockStart = header;
        if (header.Has(FrameFlags.EndHeaders) && fragment.IsSingleSegment)
        {
            OnHeaderBlock(fragment.FirstSpan);
            return ValueTask.CompletedTask;
        }
        _headerBlock = _headerBlockBuffer;
        _headerBlock.ResetWrittenCount();
        foreach (var segment in fragment) _headerBlock.Write(segment.Span);
        if (header.Has(FrameFlags.EndHeaders))
        {
            OnHeaderBlock();
            return ValueTask.CompletedTask;
        }
        // The rest must come in a bounded number of CONTINUATION frames and in bounded time (CVE-2024-27316).
        _continuationFrames = 0;
        Volatile.Write(ref _headerBlockStartedAt, Math.Max(1, Environment.TickCount64));
        return ValueTask.CompletedTask;
    }

    private ValueTask OnContinuationAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (_headerBlock is null || header.StreamId != _headerBlockStart.StreamId)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"unexpected CONTINUATION frame on stream {header.StreamId}");
        if (++_continuationFrames > _options.MaxContinuationFrames)
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm,
                $"more than {_options.MaxContinuationFrames} CONTINUATION frames in the header block of stream {header.StreamId}");
        if (_headerBlock.WrittenCount + payload.Length > _options.MaxHeaderListSize * 2L)
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, "header block too large");
        foreach (var segment in payload) _headerBlock.Write(segment.Span);
        if (header.Has(FrameFlags.EndHeaders)) OnHeaderBlock();
        return ValueTask.CompletedTask;
    }

    private void OnHeaderBlock()
    {
        var block = _headerBlock!;
        _headerBlock = null;
        Volatile.Write(ref _headerBlockStartedAt, 0);
        OnHeaderBlock(block.WrittenSpan);
        // A rare huge block must not pin its buffer for the life of the connection.
        if (block.Capacity > 16 * 1024) _headerBlockBuffer = new ArrayBufferWriter<byte>(256);
    }

    private void OnHeaderBlock(ReadOnlySpan<byte> block)
    {
        var start = _headerBlockStart;
        _headerScratch.Clear();
        try
        {
            _decoder.Decode(block, _headerScratch);
        }
        catch (HpackException e)
        {
            throw new Http2ConnectionException(Http2ErrorCode.CompressionError, $"header block on stream {start.StreamId}: {e.Message}");
        }
        int id = start.StreamId;
        bool endStream = start.Has(FrameFlags.EndStream);

        var existing = Find(id);
        if (existing is not null)
        {
            // Trailers: they must end the request (RFC 9113 8.1).
            if (existing.RequestCompleted)
                throw new Http2StreamException(id, Http2ErrorCode.StreamClosed, $"HEADERS after END_STREAM on stream {id}");
            if (!endStream)
                throw new Http2StreamException(id, Http2ErrorCode.ProtocolError, $"trailers on stream {id} without END_STREAM");
            if (ContentLengthMismatch(existing, endStream: true) is { } mismatch)
                throw new Http2StreamException(id, Http2ErrorCode.ProtocolError, mismatch);
            existing.CompleteRequest();
            CloseIfDone(existing);
            return;
        }
        if (id <= _lastStreamId)
        {
            if (WasResetByUs(id)) return;
            if (WasClosed(id)) throw new Http2ConnectionException(Http2ErrorCode.StreamClosed, $"HEADERS on closed stream {id}");
            // Never opened: a new stream must have a higher identifier than every earlier one (RFC 9113 5.1.1).
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"HEADERS on stream {id}, below the last opened stream {_lastStreamId}");
        }
        if ((id & 1) == 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"client opened even-numbered stream {id}");
        Http2Stream stream;
        // One lock with ShutdownAsync: a stream is either counted in the GOAWAY's last stream ID and
        // drained, or not processed at all; never opened after the drain saw zero streams.
        lock (_streams)
        {
            _lastStreamId = id;
            if (_goingAway)
            {
                // Not processed; GOAWAY told the peer so. Its DATA and other frames are ignored like those of a reset stream.
                RememberReset(id);
                return;
            }
            if (ValidateRequestHeaders(_headerScratch, out long contentLength) is { } malformed)
                throw new Http2StreamException(id, Http2ErrorCode.ProtocolError, $"malformed request on stream {id}: {malformed}");
            if (endStream && contentLength > 0)
                throw new Http2StreamException(id, Http2ErrorCode.ProtocolError, $"stream {id} announced content-length {contentLength} but sent no DATA");
            if (_streams.Count - _closedForPeer >= _options.MaxConcurrentStreams)
                throw new Http2StreamException(id, Http2ErrorCode.RefusedStream,
                    $"stream {id} refused: {_options.MaxConcurrentStreams} concurrent streams already open");
            if (Volatile.Read(ref _runningHandlers) >= 2L * _options.MaxConcurrentStreams)
                throw new Http2StreamException(id, Http2ErrorCode.EnhanceYourCalm,
                    $"stream {id} refused: the handlers of {_runningHandlers} streams, most of them reset, are still running");
            stream = new Http2Stream(this, id, _headerScratch.ToArray(), contentLength, _maxRequestBody, _peerInitialWindow,
                _options.StreamWindowSize, _options.ZeroWindowTimeout) { BodyProgressAt = _lastFrameTicks };
            _streams.Add(id, stream);
            Interlocked.Increment(ref _runningHandlers);
            GrpcTelemetry.Streams.Add(1);
        }
        if (endStream) stream.CompleteRequest();
        _ready.Add(stream);
    }

    private async Task RunHandlerAsync(Http2Stream stream)
    {
        try
        {
            // A stream reset before its handler started (HEADERS and RST_STREAM in one read: rapid reset) never runs it.
            if (stream.IsAborted) return;
            await _handler(stream).ConfigureAwait(false);
            if (!stream.ResponseCompleted) await stream.ResetAsync(Http2ErrorCode.InternalError).ConfigureAwait(false);
        }
        catch (Exception)
        {
            if (!stream.ResponseCompleted) await stream.ResetAsync(Http2ErrorCode.InternalError).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _runningHandlers);
            await stream.ReleaseBodyAsync().ConfigureAwait(false);
            CloseIfDone(stream);
        }
    }

    /// <summary>RFC 9113 8.2 and 8.3: returns what is wrong with the request header list, or null; also its content-length (-1 if none).</summary>
    internal static string? ValidateRequestHeaders(List<HeaderField> headers, out long contentLength)
    {
        contentLength = -1;
        bool regularSeen = false, method = false, scheme = false, path = false, authority = false;
        foreach (var h in headers)
        {
            if (h.Name.Length == 0) return "empty header name";
            foreach (char c in h.Name)
                if (c is >= 'A' and <= 'Z') return $"header name \"{h.Name}\" is not lowercase";
            if (h.Name[0] == ':')
            {
                if (regularSeen) return $"pseudo-header {h.Name} after regular headers";
                ref bool seen = ref method;
                switch (h.Name)
                {
                    case ":method": seen = ref method; break;
                    case ":scheme": seen = ref scheme; break;
                    case ":path": seen = ref path; if (h.Value.Length == 0) return "empty :path"; break;
                    case ":authority": seen = ref authority; break;
                    default: return $"unknown pseudo-header {h.Name}";
                }
                if (seen) return $"duplicate pseudo-header {h.Name}";
                seen = true;
                continue;
            }
            regularSeen = true;
            switch (h.Name)
            {
                case "connection" or "keep-alive" or "proxy-connection" or "transfer-encoding" or "upgrade":
                    return $"connection-specific header \"{h.Name}\"";
                case "te" when h.Value != "trailers":
                    return "te header other than \"trailers\"";
                case "content-length":
                    if (contentLength >= 0 || !long.TryParse(h.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out contentLength))
                        return $"content-length \"{h.Value}\" is not one non-negative number";
                    break;
            }
        }
        if (!method || !scheme || !path) return "missing :method, :scheme or :path";
        return null;
    }

    private ValueTask OnPriority(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId == 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PRIORITY frame on stream 0");
        if (header.Length != 5)
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.FrameSizeError, "PRIORITY frame must be 5 octets");
        if ((FrameReader.ReadUInt32(payload, 0) & 0x7FFF_FFFF) == header.StreamId)
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, $"stream {header.StreamId} depends on itself");
        return ValueTask.CompletedTask; // priorities are advisory and ignored
    }

    private ValueTask OnRstStream(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId == 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "RST_STREAM on stream 0");
        if (header.Length != 4)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "RST_STREAM frame must be 4 octets");
        if (header.StreamId > _lastStreamId)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"RST_STREAM on idle stream {header.StreamId}");
        CountStreamReset();
        GrpcTelemetry.CountReset(sent: false, (Http2ErrorCode)FrameReader.ReadUInt32(payload, 0));
        if (Find(header.StreamId) is { } stream) OnStreamReset(stream, sentByUs: false);
        return ValueTask.CompletedTask;
    }

    /// <summary>Rapid reset (CVE-2023-44487) and its server-provoked variant: streams ended abnormally are rate-limited.</summary>
    private void CountStreamReset()
    {
        if (!_streamResets.TryTake())
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm,
                $"more than {_options.StreamResetRate.Burst} streams reset (by the client or for its errors) at over {_options.StreamResetRate.PerSecond}/s");
    }

    private async ValueTask OnSettingsAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId != 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "SETTINGS frame on a stream");
        if (header.Has(FrameFlags.Ack))
        {
            if (header.Length != 0)
                throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "SETTINGS ACK with a payload");
            return;
        }
        if (header.Length % 6 != 0)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "SETTINGS payload is not a multiple of 6 octets");
        if (header.Length / 6 > _options.MaxSettingsPerFrame)
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm,
                $"SETTINGS frame with {header.Length / 6} parameters (at most {_options.MaxSettingsPerFrame})");
        if (!_settingsFrames.TryTake())
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm,
                $"more than {_options.SettingsRate.Burst} SETTINGS frames at over {_options.SettingsRate.PerSecond}/s");
        var raw = payload.ToArray();
        int initialWindow = _peerInitialWindow;
        long largestStreamWindow = long.MinValue;
        for (int i = 0; i < raw.Length; i += 6)
        {
            var id = (SettingId)((raw[i] << 8) | raw[i + 1]);
            uint value = (uint)((raw[i + 2] << 24) | (raw[i + 3] << 16) | (raw[i + 4] << 8) | raw[i + 5]);
            if (id != SettingId.InitialWindowSize)
            {
                await ApplySettingAsync(id, value).ConfigureAwait(false);
                continue;
            }
            if (value > Http2Limits.MaxWindowSize)
                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE of {value} exceeds 2^31-1");
            // Every value in turn must leave every stream's window within 2^31-1 (RFC 9113 6.9.2), but only the last
            // one is applied: one walk of the streams per frame, however many times the frame repeats the setting.
            if (largestStreamWindow == long.MinValue) largestStreamWindow = LargestStreamSendWindow();
            if (largestStreamWindow + ((long)value - _peerInitialWindow) > Http2Limits.MaxWindowSize)
                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "a stream's window overflows after SETTINGS_INITIAL_WINDOW_SIZE");
            initialWindow = (int)value;
        }
        if (initialWindow != _peerInitialWindow)
        {
            int delta = initialWindow - _peerInitialWindow;
            _peerInitialWindow = initialWindow;
            foreach (var stream in SnapshotStreams())
                if (!stream.SendWindow.TryAdd(delta))
                    throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, $"stream {stream.Id}'s window overflows after SETTINGS_INITIAL_WINDOW_SIZE");
        }
        await Writer.WriteSettingsAckAsync().ConfigureAwait(false);
    }

    private long LargestStreamSendWindow()
    {
        long largest = long.MinValue / 2;
        foreach (var stream in SnapshotStreams()) largest = Math.Max(largest, stream.SendWindow.Available);
        return largest;
    }

    private async ValueTask ApplySettingAsync(SettingId id, uint value)
    {
        switch (id)
        {
            case SettingId.HeaderTableSize:
                await Writer.SetPeerHeaderTableSizeAsync((int)Math.Min(value, 1 << 16)).ConfigureAwait(false);
                break;
            case SettingId.EnablePush when value > 1:
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"SETTINGS_ENABLE_PUSH of {value}");
            case SettingId.MaxFrameSize:
                if (value < Http2Limits.DefaultMaxFrameSize || value > Http2Limits.MaxAllowedFrameSize)
                    throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE of {value} is outside 16384..16777215");
                Writer.SetPeerMaxFrameSize((int)value);
                break;
        }
    }

    private async ValueTask OnPingAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId != 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "PING frame on a stream");
        if (header.Length != 8)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "PING frame must be 8 octets");
        ulong opaque = ((ulong)FrameReader.ReadUInt32(payload, 0) << 32) | FrameReader.ReadUInt32(payload, 4);
        if (header.Has(FrameFlags.Ack))
        {
            Interlocked.CompareExchange(ref _pendingPing, -1, (long)opaque);
            return;
        }
        // grpc-go clients recognise this debug data and slow their keepalive down.
        if (!_pings.Allow(Writer.TakeResponseSent(), hasStreams: ActiveStreams > 0))
            throw new Http2ConnectionException(Http2ErrorCode.EnhanceYourCalm, "too_many_pings");
        await Writer.WritePingAsync(ack: true, opaque).ConfigureAwait(false);
    }

    private ValueTask OnGoAway(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.StreamId != 0)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "GOAWAY frame on a stream");
        if (header.Length < 8)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "GOAWAY frame shorter than 8 octets");
        lock (_streams)
        {
            _goingAway = true;
            if (_streams.Count == 0) _drained.TrySetResult();
        }
        return ValueTask.CompletedTask;
    }

    private async ValueTask OnWindowUpdateAsync(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (header.Length != 4)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, "WINDOW_UPDATE frame must be 4 octets");
        int increment = (int)(FrameReader.ReadUInt32(payload, 0) & 0x7FFF_FFFF);
        if (header.StreamId == 0)
        {
            if (increment == 0)
                throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, "WINDOW_UPDATE with increment 0 on the connection");
            if (!SendWindow.TryAdd(increment))
                throw new Http2ConnectionException(Http2ErrorCode.FlowControlError, "connection send window exceeds 2^31-1");
            return;
        }
        if (header.StreamId > _lastStreamId)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError, $"WINDOW_UPDATE on idle stream {header.StreamId}");
        var stream = Find(header.StreamId);
        if (stream is null) return; // closed streams may still receive window updates
        if (increment == 0)
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.ProtocolError, $"WINDOW_UPDATE with increment 0 on stream {header.StreamId}");
        if (!stream.SendWindow.TryAdd(increment))
            throw new Http2StreamException(header.StreamId, Http2ErrorCode.FlowControlError, $"stream {header.StreamId}'s send window exceeds 2^31-1");
        await ValueTask.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>Answers a stream error of the peer's making with RST_STREAM; these count as resets.</summary>
    private async ValueTask ResetStreamAsync(int streamId, Http2ErrorCode code)
    {
        CountStreamReset();
        if (Find(streamId) is { } stream)
        {
            await stream.ResetAsync(code).ConfigureAwait(false);
            return;
        }
        RememberReset(streamId);
        await Writer.WriteRstStreamAsync(streamId, code).ConfigureAwait(false);
    }

    internal void OnStreamReset(Http2Stream stream, bool sentByUs)
    {
        if (sentByUs) RememberReset(stream.Id);
        stream.Abort();
        Remove(stream);
    }

    internal void OnResponseCompleted(Http2Stream stream) => CloseIfDone(stream);

    /// <summary>Frames from the peer treat the stream as closed; it stays in the table (and drains) until its last write is done.</summary>
    internal void CloseForPeer(Http2Stream stream)
    {
        lock (_streams)
        {
            if (stream.ClosedForPeer || !_streams.ContainsKey(stream.Id)) return;
            stream.ClosedForPeer = true;
            _closedForPeer++;
            RememberClosed(stream.Id);
        }
    }

    internal void OnStreamStalled(Http2Stream stream, FlowControlStallException e) =>
        _log.LogDebug("HTTP/2 connection {Peer}: stream {Stream} reset: {Reason}", _peer, stream.Id, e.Message);

    private void CloseIfDone(Http2Stream stream)
    {
        if (stream.ResponseCompleted && stream.RequestCompleted) Remove(stream);
        else if (stream.ResponseCompleted && !stream.RequestCompleted)
        {
            // The response ended first (e.g. an error before the body was read): stop the peer sending (RFC 9113 8.1).
            _ = stream.ResetAsync(Http2ErrorCode.NoError).AsTask();
        }
    }

    private void Remove(Http2Stream stream)
    {
        lock (_streams)
        {
            if (!_streams.Remove(stream.Id)) return;
            if (stream.ClosedForPeer) _closedForPeer--;
            RememberClosed(stream.Id);
            if (_goingAway && _streams.Count == 0) _drained.TrySetResult();
        }
    }

    private void RememberClosed(int streamId)
    {
        if (_closedStreams.Count > 4096) _closedStreams.Clear();
        _closedStreams.Add(streamId);
    }

    private bool WasClosed(int streamId)
    {
        lock (_streams) return _closedStreams.Contains(streamId);
    }

    private void RememberReset(int streamId)
    {
        lock (_resetByUs)
        {
            if (_resetByUs.Count > 4096) _resetByUs.Clear();
            _resetByUs.Add(streamId);
        }
    }

    private bool WasResetByUs(int streamId)
    {
        lock (_resetByUs) return _resetByUs.Contains(streamId);
    }

    /// <summary>The stream the peer's frames for <paramref name="id"/> address, or null if it is not open for them.</summary>
    private Http2Stream? Find(int id)
    {
        lock (_streams) return _streams.TryGetValue(id, out var stream) && !stream.ClosedForPeer ? stream : null;
    }

    private Http2Stream[] SnapshotStreams()
    {
        lock (_streams) return _streams.Values.ToArray();
    }

    private void AbortAllStreams()
    {
        SendWindow.Abort();
        foreach (var stream in SnapshotStreams()) { stream.Abort(); Remove(stream); }
        _drained.TrySetResult();
    }
}
