using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace Hull.Streaming.Spdy;

public sealed class SpdySessionOptions
{
    /// <summary>The receive window Hull advertises per stream (SETTINGS INITIAL_WINDOW_SIZE).</summary>
    public int InitialWindowSize { get; init; } = SpdyProtocol.InitialWindowSize;

    /// <summary>The session ends when no frame was read or written for this long.</summary>
    public TimeSpan IdleTimeout { get; init; } = Timeout.InfiniteTimeSpan;
}

/// <summary>
/// One SPDY/3.1 session over an established byte stream (an upgraded HTTP/1.1 connection), on
/// either side. Owns stream state, ids, ping, GOAWAY and flow control; framing lives in
/// <see cref="SpdyFrameReader"/> and <see cref="SpdyFrameWriter"/>.
/// <para>
/// Flow control: Hull always advertises a 64 KiB window and sends WINDOW_UPDATE as the application
/// consumes data. It enforces the peer's windows on what it sends only once the peer has shown it
/// does SPDY/3.1 flow control (it sent a WINDOW_UPDATE or a SETTINGS with INITIAL_WINDOW_SIZE).
/// Kubernetes' spdystream (kubelet, kube-apiserver, kubectl) does neither and ignores WINDOW_UPDATE,
/// so enforcing windows against it would stall every stream after 64 KiB.
/// </para>
/// </summary>
public sealed class SpdySession : IAsyncDisposable
{
    private readonly Stream _transport;
    private readonly SpdyFrameReader _reader;
    private readonly SpdyFrameWriter _writer;
    private readonly SpdySessionOptions _options;
    private readonly ConcurrentDictionary<uint, SpdyStream> _streams = new();
    private readonly Channel<SpdyStream> _incoming = Channel.CreateUnbounded<SpdyStream>();
    private readonly CancellationTokenSource _closed = new();
    private readonly CancellationTokenSource _idle = new();
    private readonly ConcurrentDictionary<uint, TaskCompletionSource> _pings = new();
    private readonly object _flowLock = new();
    private TaskCompletionSource _windowChanged = NewSignal();
    private uint _nextStreamId;
    private uint _nextPingId;
    private uint _lastPeerStreamId;
    private int _peerInitialWindow = SpdyProtocol.InitialWindowSize;
    private long _sessionSendWindow = SpdyProtocol.InitialWindowSize;
    private long _sessionUnacked;
    private bool _peerFlowControl;
    private int _goneAway;
    private Task? _readLoop;
    private Exception? _closeReason;

    public SpdySession(Stream transport, bool isServer, SpdySessionOptions? options = null)
    {
        _transport = transport;
        IsServer = isServer;
        _options = options ?? new SpdySessionOptions();
        _reader = new SpdyFrameReader(transport);
        _writer = new SpdyFrameWriter(transport) { OnWrite = ResetIdle };
        _nextStreamId = isServer ? 2u : 1u;
        _nextPingId = isServer ? 2u : 1u;
        if (_options.IdleTimeout != Timeout.InfiniteTimeSpan)
            _idle.Token.Register(() => Abort(new TimeoutException($"SPDY session idle for {_options.IdleTimeout}")));
    }

    public bool IsServer { get; }

    /// <summary>Fires when the session has ended: the peer went away, the idle timeout hit, or it was closed.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Why the session ended, when it was not a clean close.</summary>
    public Exception? CloseReason => _closeReason;

    /// <summary>Streams the peer opened (SYN_STREAM), in order. Completes when the session ends.</summary>
    public ChannelReader<SpdyStream> IncomingStreams => _incoming.Reader;

    /// <summary>The read loop; completes when the session ends.</summary>
    public Task Completion => _readLoop ?? Task.CompletedTask;

    internal SpdyFrameWriter Writer => _writer;
    internal int ReceiveWindow => _options.InitialWindowSize;

    /// <summary>Sends our SETTINGS and starts reading frames.</summary>
    public void Start()
    {
        if (_readLoop != null) throw new InvalidOperationException("session already started");
        ResetIdle();
        _readLoop = Task.Run(ReadLoopAsync);
        _ = SendSafeAsync(new SpdySettingsFrame(false, [new SpdySetting(SpdySettingId.InitialWindowSize, 0, (uint)_options.InitialWindowSize)]));
    }

    /// <summary>Opens a stream (SYN_STREAM) and waits for the peer's SYN_REPLY.</summary>
    public async Task<SpdyStream> OpenStreamAsync(SpdyHeaders headers, bool fin = false, CancellationToken ct = default)
    {
        if (_goneAway != 0 || _closed.IsCancellationRequested) throw new IOException("SPDY session is closed");
        SpdyStream? stream = null;
        // Ids must increase on the wire (a peer ends the session otherwise), so the id is taken under the write lock.
        await _writer.WriteAsync(() =>
        {
            uint id = Interlocked.Add(ref _nextStreamId, 2) - 2;
            stream = new SpdyStream(this, id, headers, localFin: fin, remoteFin: false, _peerInitialWindow, locallyInitiated: true);
            _streams[id] = stream;
            return new SpdySynStreamFrame(id, 0, 0, 0, fin ? SpdyFlags.Fin : (byte)0, headers);
        }, ct).ConfigureAwait(false);
        await stream!.WaitForReplyAsync(ct).ConfigureAwait(false);
        return stream;
    }

    /// <summary>Round-trips a PING.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken ct = default)
    {
        uint id = Interlocked.Add(ref _nextPingId, 2) - 2;
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[id] = tcs;
        var sw = Stopwatch.StartNew();
        try
        {
            await _writer.WriteAsync(new SpdyPingFrame(id), ct).ConfigureAwait(false);
            await tcs.Task.WaitAsync(ct).WaitAsync(_closed.Token).ConfigureAwait(false);
            return sw.Elapsed;
        }
        finally { _pings.TryRemove(id, out _); }
    }

    /// <summary>Sends GOAWAY: no new streams are accepted; existing ones go on.</summary>
    public async ValueTask GoAwayAsync(SpdyGoAwayStatus status = SpdyGoAwayStatus.Ok)
    {
        if (Interlocked.Exchange(ref _goneAway, 1) != 0) return;
        await SendSafeAsync(new SpdyGoAwayFrame(_lastPeerStreamId, status)).ConfigureAwait(false);
    }

    private async Task ReadLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var frame = await _reader.ReadFrameAsync(_closed.Token).ConfigureAwait(false);
                if (frame == null) break;
                ResetIdle();
                await HandleFrameAsync(frame).ConfigureAwait(false);
            }
        }
        catch (SpdyProtocolException e)
        {
            error = e;
            await SendSafeAsync(new SpdyGoAwayFrame(_lastPeerStreamId, SpdyGoAwayStatus.ProtocolError)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }
        Abort(error);
    }

    private async ValueTask HandleFrameAsync(SpdyFrame frame)
    {
        switch (frame)
        {
            case SpdyDataFrame d:
                if (_streams.TryGetValue(d.StreamId, out var ds))
                {
                    await ds.OnDataAsync(d.Data, d.Fin).ConfigureAwait(false);
                }
                else if (WasOpened(d.StreamId))
                {
                    // A stream that is closed or was reset: frames the peer sent before it knew are dropped, and
                    // their bytes go back to the session window so other streams keep moving.
                    CreditSession(d.Data.Length);
                }
                else
                {
                    await SendSafeAsync(new SpdyRstStreamFrame(d.StreamId, SpdyRstStatus.InvalidStream)).ConfigureAwait(false);
                }
                break;
            case SpdySynStreamFrame s:
            {
                bool peerId = IsServer ? (s.StreamId & 1) == 1 : (s.StreamId & 1) == 0;
                if (!peerId || s.StreamId <= _lastPeerStreamId)
                    throw new SpdyProtocolException($"SYN_STREAM with invalid stream id {s.StreamId}", s.StreamId);
                _lastPeerStreamId = s.StreamId;
                if (_goneAway != 0)
                {
                    await SendSafeAsync(new SpdyRstStreamFrame(s.StreamId, SpdyRstStatus.RefusedStream)).ConfigureAwait(false);
                    break;
                }
                var stream = new SpdyStream(this, s.StreamId, s.Headers, localFin: s.Unidirectional, remoteFin: s.Fin, _peerInitialWindow, locallyInitiated: false);
                _streams[s.StreamId] = stream;
                _incoming.Writer.TryWrite(stream);
                break;
            }
            case SpdySynReplyFrame r:
                if (_streams.TryGetValue(r.StreamId, out var rs)) rs.OnReply(r.Headers, r.Fin);
                break;
            case SpdyHeadersFrame h:
                if (_streams.TryGetValue(h.StreamId, out var hs)) hs.OnHeaders(h.Headers, h.Fin);
                break;
            case SpdyRstStreamFrame rst:
                if (_streams.TryGetValue(rst.StreamId, out var xs)) xs.OnReset(rst.Status);
                break;
            case SpdySettingsFrame st:
                if (st.Get(SpdySettingId.InitialWindowSize) is uint w)
                {
                    if (w > int.MaxValue) throw new SpdyProtocolException($"INITIAL_WINDOW_SIZE {w} is too large");
                    lock (_flowLock)
                    {
                        int delta = (int)w - _peerInitialWindow;
                        _peerInitialWindow = (int)w;
                        _peerFlowControl = true;
                        foreach (var s in _streams.Values) s.SendWindow += delta;
                    }
                    SignalWindow();
                }
                break;
            case SpdyPingFrame p:
                bool ours = IsServer ? (p.Id & 1) == 0 : (p.Id & 1) == 1;
                if (ours) { if (_pings.TryGetValue(p.Id, out var tcs)) tcs.TrySetResult(); }
                else await SendSafeAsync(p).ConfigureAwait(false);
                break;
            case SpdyGoAwayFrame:
                Interlocked.Exchange(ref _goneAway, 1);
                break;
            case SpdyWindowUpdateFrame wu:
                if (wu.DeltaWindowSize == 0) break;
                lock (_flowLock)
                {
                    _peerFlowControl = true;
                    if (wu.StreamId == 0) _sessionSendWindow += wu.DeltaWindowSize;
                    else if (_streams.TryGetValue(wu.StreamId, out var ws)) ws.SendWindow += wu.DeltaWindowSize;
                }
                SignalWindow();
                break;
            default:
                break; // unknown control frames are ignored (draft 3.1 section 2.2.1)
        }
    }

    /// <summary>
    /// Takes up to <paramref name="want"/> bytes of send window for <paramref name="stream"/>,
    /// waiting for WINDOW_UPDATE when the peer does flow control and the window is spent.
    /// </summary>
    internal async ValueTask<int> AcquireSendWindowAsync(SpdyStream stream, int want, CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_flowLock)
            {
                if (stream.IsReset) throw new IOException($"SPDY stream {stream.Id} was reset ({stream.ResetStatus})");
                if (_closed.IsCancellationRequested) throw new IOException("SPDY session is closed", _closeReason);
                long avail = Math.Min(stream.SendWindow, _sessionSendWindow);
                if (!_peerFlowControl || avail > 0)
                {
                    int n = _peerFlowControl ? (int)Math.Min(avail, want) : want;
                    stream.SendWindow -= n;
                    _sessionSendWindow -= n;
                    return n;
                }
                wait = _windowChanged.Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the id belongs to a stream that was opened on this session (it may be closed now).</summary>
    private bool WasOpened(uint id)
    {
        bool peerId = IsServer ? (id & 1) == 1 : (id & 1) == 0;
        return peerId ? id <= _lastPeerStreamId : id < Volatile.Read(ref _nextStreamId);
    }

    /// <summary>Credits consumed bytes back to the peer with WINDOW_UPDATE frames.</summary>
    internal void OnConsumed(SpdyStream stream, int n)
    {
        if (n <= 0) return;
        CreditSession(n);
        int pending = stream.AddUnacked(n);
        if (pending >= _options.InitialWindowSize / 2 && !stream.RemoteClosed)
        {
            stream.AddUnacked(-pending);
            _ = SendSafeAsync(new SpdyWindowUpdateFrame(stream.Id, (uint)pending));
        }
    }

    /// <summary>Credits bytes the application read or Hull dropped to the session window (WINDOW_UPDATE on stream 0).</summary>
    internal void CreditSession(int n)
    {
        if (n <= 0) return;
        long session = Interlocked.Add(ref _sessionUnacked, n);
        if (session >= _options.InitialWindowSize / 2)
        {
            Interlocked.Add(ref _sessionUnacked, -session);
            _ = SendSafeAsync(new SpdyWindowUpdateFrame(0, (uint)session));
        }
    }

    internal void SignalWindow()
    {
        TaskCompletionSource old;
        lock (_flowLock)
        {
            old = _windowChanged;
            _windowChanged = NewSignal();
        }
        old.TrySetResult();
    }

    internal void Remove(SpdyStream stream) => _streams.TryRemove(stream.Id, out _);

    /// <summary>Writes a frame, swallowing errors of a transport that is already gone.</summary>
    internal async Task SendSafeAsync(SpdyFrame frame)
    {
        try { await _writer.WriteAsync(frame, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException) { }
    }

    private void ResetIdle()
    {
        if (_options.IdleTimeout == Timeout.InfiniteTimeSpan) return;
        try { _idle.CancelAfter(_options.IdleTimeout); } catch (ObjectDisposedException) { }
    }

    /// <summary>Ends the session now: every stream fails, the transport is closed.</summary>
    public void Abort(Exception? reason = null)
    {
        lock (_flowLock)
        {
            if (_closed.IsCancellationRequested) return;
            _closeReason = reason;
            try { _closed.Cancel(); } catch (ObjectDisposedException) { }
        }
        foreach (var s in _streams.Values) s.OnSessionClosed(reason);
        _incoming.Writer.TryComplete();
        SignalWindow();
        foreach (var p in _pings.Values) p.TrySetCanceled();
        try { _transport.Dispose(); } catch (Exception) { }
    }

    /// <summary>Sends GOAWAY, gives the peer a moment to read what was written, and closes the transport.</summary>
    public async ValueTask CloseAsync(TimeSpan? linger = null)
    {
        await GoAwayAsync().ConfigureAwait(false);
        if (linger is { } l && l > TimeSpan.Zero)
        {
            try { await Completion.WaitAsync(l).ConfigureAwait(false); } catch (TimeoutException) { }
        }
        Abort();
    }

    public async ValueTask DisposeAsync()
    {
        Abort();
        if (_readLoop != null) { try { await _readLoop.ConfigureAwait(false); } catch { } }
        _reader.Dispose();
        _writer.Dispose();
        _idle.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
