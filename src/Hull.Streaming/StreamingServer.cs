using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Hull.Streaming.Spdy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Streaming;

public sealed class StreamingServerOptions
{
    public string Address { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port.</summary>
    public int Port { get; init; }
    /// <summary>Serve HTTPS with this certificate (enable_tls_streaming).</summary>
    public X509Certificate2? Certificate { get; init; }
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromHours(4);
    public TimeSpan StreamCreationTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan TokenTtl { get; init; } = TimeSpan.FromMinutes(1);
    public int MaxInFlightRequests { get; init; } = 1000;
    /// <summary>How long a finished session waits for the client to close before dropping the connection.</summary>
    public TimeSpan CloseLinger { get; init; } = TimeSpan.FromSeconds(2);
    public TimeProvider? TimeProvider { get; init; }
}

/// <summary>
/// The CRI streaming server: HTTP/1.1 (Kestrel) on <c>/exec/{token}</c>, <c>/attach/{token}</c> and
/// <c>/portforward/{token}</c>, upgraded to SPDY/3.1 or WebSocket, handing each session to an
/// <see cref="IStreamingRuntime"/>.
/// </summary>
public sealed class StreamingServer : IAsyncDisposable
{
    private readonly IStreamingRuntime _runtime;
    private readonly StreamingServerOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _listenerLock = new();
    private Socket? _listener;
    private Task? _serving;
    private WebApplication? _app;
    private int _disposed;

    public StreamingServer(IStreamingRuntime runtime, StreamingServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _runtime = runtime;
        _options = options ?? new StreamingServerOptions();
        _log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Hull.Streaming");
        Cache = new StreamingRequestCache(_options.TokenTtl, _options.MaxInFlightRequests, _options.TimeProvider);
    }

    public StreamingRequestCache Cache { get; }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:41234/ (valid after <see cref="StartAsync"/>).</summary>
    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    /// <summary>
    /// Binds the listening socket, so a bad address or a taken port fails the daemon's start and the port is known.
    /// Kestrel itself starts on that socket with the first URL handed out: an ASP.NET Core host is about 14 MiB of a
    /// daemon's resident memory, and many nodes never exec, attach or port-forward. A client that connects in
    /// between waits in the socket's backlog.
    /// </summary>
    public Task StartAsync(CancellationToken ct = default)
    {
        var ip = IPAddress.Parse(_options.Address);
        var listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(ip, _options.Port));
            listener.Listen(512);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"cannot listen on {_options.Address} port {_options.Port}: {e.Message}", e);
        }
        _listener = listener;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        BaseAddress = new UriBuilder(_options.Certificate != null ? "https" : "http", bound.Address.ToString(), bound.Port).Uri;
        return Task.CompletedTask;
    }

    /// <summary>Whether Kestrel runs (it starts with the first URL handed out).</summary>
    internal bool Serving => _app != null;

    /// <summary>Starts Kestrel on the bound socket once; a start that failed is tried again by the next caller.</summary>
    private void EnsureServing()
    {
        lock (_listenerLock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_listener is null) throw new InvalidOperationException("the streaming server was not started");
            if (_serving is null || _serving.IsFaulted) _serving = ServeAsync(_listener);
        }
    }

    private async Task ServeAsync(Socket listener)
    {
        try
        {
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                // Kestrel does not own a handle it is given: the socket stays this server's to close.
                k.ListenHandle((ulong)listener.SafeHandle.DangerousGetHandle(), lo =>
                {
                    lo.Protocols = HttpProtocols.Http1;
                    if (_options.Certificate != null) lo.UseHttps(_options.Certificate);
                });
            });
            var app = builder.Build();
            app.Run(HandleAsync);
            await app.StartAsync(_stopping.Token).ConfigureAwait(false);
            _app = app;
            _log.LogDebug("streaming server serving on {Address}", BaseAddress);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _log.LogError(e, "streaming server on {Address} failed to start: {Message}", BaseAddress, e.Message);
            throw;
        }
    }

    /// <summary>A single-use URL for the request (the CRI Exec/Attach/PortForward response).</summary>
    public Uri GetUrl(StreamingRequest request)
    {
        string kind = request switch
        {
            ExecRequest => "exec",
            AttachRequest => "attach",
            PortForwardRequest => "portforward",
            _ => throw new ArgumentException($"unknown streaming request {request.GetType().Name}", nameof(request)),
        };
        EnsureServing();
        return new Uri(BaseAddress, $"{kind}/{Cache.Insert(request)}");
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var parts = (ctx.Request.Path.Value ?? "").Trim('/').Split('/');
        if (parts.Length != 2 || parts[0] is not ("exec" or "attach" or "portforward"))
        {
            await Error(ctx, 404, "not found").ConfigureAwait(false);
            return;
        }
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsPost(ctx.Request.Method))
        {
            ctx.Response.Headers.Allow = "GET, POST";
            await Error(ctx, 405, $"method {ctx.Request.Method} is not allowed").ConfigureAwait(false);
            return;
        }
        if (!Cache.TryConsume(parts[1], out var request) || (parts[0], request) is not (("exec", ExecRequest) or ("attach", AttachRequest) or ("portforward", PortForwardRequest)))
        {
            await Error(ctx, 404, $"streaming token \"{parts[1]}\" is unknown, expired or already used").ConfigureAwait(false);
            return;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, ctx.RequestAborted);
        try
        {
            if (IsWebSocket(ctx.Request))
                await ServeWebSocketAsync(ctx, request!, linked.Token).ConfigureAwait(false);
            else
                await ServeSpdyAsync(ctx, request!, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or WebSocketException)
        {
            _log.LogDebug(e, "streaming session {Path} ended: {Message}", ctx.Request.Path, e.Message);
        }
    }

    private static bool IsWebSocket(HttpRequest r) =>
        r.Headers.Upgrade.Any(v => string.Equals(v, "websocket", StringComparison.OrdinalIgnoreCase));

    private static Task Error(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message + "\n");
    }

    // ------------------------------------------------------------------ SPDY

    private async Task ServeSpdyAsync(HttpContext ctx, StreamingRequest request, CancellationToken ct)
    {
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        bool spdy = ctx.Request.Headers.Upgrade.Any(v => v != null && v.StartsWith("SPDY/3.1", StringComparison.OrdinalIgnoreCase));
        if (upgrade == null || !upgrade.IsUpgradableRequest || !spdy)
        {
            await Error(ctx, 400, "unable to upgrade: missing upgrade headers in request (want Connection: Upgrade and Upgrade: SPDY/3.1 or websocket)").ConfigureAwait(false);
            return;
        }
        var serverProtocols = request is PortForwardRequest ? StreamProtocols.SpdyPortForward : StreamProtocols.SpdyRemoteCommand;
        var clientProtocols = StreamProtocols.SplitList(ctx.Request.Headers[StreamProtocols.HeaderProtocolVersion]);
        if (clientProtocols.Count == 0)
        {
            await Error(ctx, 400, $"unable to upgrade: {StreamProtocols.HeaderProtocolVersion} is required").ConfigureAwait(false);
            return;
        }
        var protocol = StreamProtocols.Negotiate(clientProtocols, serverProtocols);
        if (protocol == null)
        {
            ctx.Response.Headers[StreamProtocols.HeaderAcceptedProtocolVersions] = serverProtocols;
            await Error(ctx, 403, $"unable to upgrade: unable to negotiate protocol: client supports [{string.Join(" ", clientProtocols)}], server accepts [{string.Join(" ", serverProtocols)}]").ConfigureAwait(false);
            return;
        }
        ctx.Response.Headers.Upgrade = StreamProtocols.SpdyUpgrade;
        ctx.Response.Headers[StreamProtocols.HeaderProtocolVersion] = protocol;
        var transport = await upgrade.UpgradeAsync().ConfigureAwait(false);
        await RunSpdySessionAsync(transport, request, protocol, ct).ConfigureAwait(false);
    }

    /// <summary>Serves one SPDY session on <paramref name="transport"/>: an upgraded connection, or a WebSocket tunnel.</summary>
    private async Task RunSpdySessionAsync(Stream transport, StreamingRequest request, string protocol, CancellationToken ct)
    {
        await using var session = new SpdySession(transport, isServer: true, new SpdySessionOptions { IdleTimeout = _options.StreamIdleTimeout });
        using var reg = ct.Register(() => session.Abort(new OperationCanceledException("streaming server stopping")));
        session.Start();
        if (request is PortForwardRequest pf)
            await new SpdyPortForwardHandler(session, _runtime, pf.PodSandboxId, _options.StreamCreationTimeout, _log).RunAsync().ConfigureAwait(false);
        else
            await ServeSpdyRemoteCommandAsync(session, protocol, request).ConfigureAwait(false);
    }

    private async Task ServeSpdyRemoteCommandAsync(SpdySession session, string protocol, StreamingRequest request)
    {
        var (stdin, stdout, stderr, tty) = Options(request);
        int expected = 1 + (stdin ? 1 : 0) + (stdout ? 1 : 0) + (stderr && !tty ? 1 : 0)
            + (tty && protocol is StreamProtocols.RemoteCommandV3 or StreamProtocols.RemoteCommandV4 ? 1 : 0);
        SpdyStream? errorS = null, stdinS = null, stdoutS = null, stderrS = null, resizeS = null;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(session.Closed))
        {
            timeout.CancelAfter(_options.StreamCreationTimeout);
            int received = 0;
            try
            {
                while (received < expected)
                {
                    var s = await session.IncomingStreams.ReadAsync(timeout.Token).ConfigureAwait(false);
                    var type = s.Headers.Get(StreamProtocols.HeaderStreamType);
                    switch (type)
                    {
                        case StreamProtocols.StreamTypeError: errorS = s; break;
                        case StreamProtocols.StreamTypeStdin: stdinS = s; break;
                        case StreamProtocols.StreamTypeStdout: stdoutS = s; break;
                        case StreamProtocols.StreamTypeStderr: stderrS = s; break;
                        case StreamProtocols.StreamTypeResize: resizeS = s; break;
                        default:
                            _log.LogWarning("SPDY stream {Id} has unexpected stream type {Type}", s.Id, type);
                            await s.ResetAsync(SpdyRstStatus.RefusedStream).ConfigureAwait(false);
                            continue;
                    }
                    await s.ReplyAsync(ReplyHeaders()).ConfigureAwait(false);
                    received++;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
            {
                _log.LogInformation("streaming session ended before the client created its streams ({Received} of {Expected}): timed out or disconnected", received, expected);
                return;
            }
        }

        // Keep accepting (and refusing) streams the client opens later so it does not hang.
        _ = Task.Run(async () =>
        {
            try { await foreach (var extra in session.IncomingStreams.ReadAllAsync().ConfigureAwait(false)) await extra.ResetAsync(SpdyRstStatus.RefusedStream).ConfigureAwait(false); }
            catch { }
        });

        var channels = new StreamingChannels(stdinS, stdoutS, tty ? null : stderrS, tty, StreamStatus.ReadResizeEvents(resizeS, session.Closed));
        byte[] status = await RunAsync(request, channels, session.Closed).ConfigureAwait(false);
        if (session.Closed.IsCancellationRequested) return;
        try
        {
            if (errorS != null)
            {
                var bytes = StreamStatus.ForProtocol(protocol, status);
                if (bytes.Length > 0) await errorS.WriteAsync(bytes).ConfigureAwait(false);
            }
            foreach (var s in new[] { stdoutS, stderrS, errorS, stdinS, resizeS })
                if (s != null) await s.CloseWriteAsync().ConfigureAwait(false);
        }
        catch (IOException) { }
        await session.CloseAsync(_options.CloseLinger).ConfigureAwait(false);
    }

    /// <summary>SYN_REPLY headers; <c>:status</c>/<c>:version</c> keep HTTP-minded SPDY clients (node spdy) happy and are ignored by spdystream.</summary>
    internal static SpdyHeaders ReplyHeaders() => new() { { ":status", "200" }, { ":version", "HTTP/1.1" } };

    private static (bool Stdin, bool Stdout, bool Stderr, bool Tty) Options(StreamingRequest r) => r switch
    {
        ExecRequest e => (e.Stdin, e.Stdout, e.Stderr && !e.Tty, e.Tty),
        AttachRequest a => (a.Stdin, a.Stdout, a.Stderr && !a.Tty, a.Tty),
        _ => (false, false, false, false),
    };

    /// <summary>Runs exec or attach and returns the Status JSON to report.</summary>
    private async Task<byte[]> RunAsync(StreamingRequest request, StreamingChannels channels, CancellationToken ct)
    {
        try
        {
            switch (request)
            {
                case ExecRequest exec:
                    int code = await _runtime.ExecAsync(exec, channels, ct).ConfigureAwait(false);
                    return code == 0 ? StreamStatus.Success() : StreamStatus.NonZeroExit(code, exec.Command);
                case AttachRequest attach:
                    await _runtime.AttachAsync(attach, channels, ct).ConfigureAwait(false);
                    return StreamStatus.Success();
                default:
                    throw new InvalidOperationException("not a remote command request");
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return StreamStatus.InternalError("the client went away");
        }
        catch (Exception e)
        {
            string what = request is ExecRequest ? "error executing command in container" : "error attaching to container";
            _log.LogWarning(e, "{What}: {Message}", what, e.Message);
            return StreamStatus.InternalError($"{what}: {e.Message}");
        }
    }

    // ------------------------------------------------------------------ WebSocket

    private async Task ServeWebSocketAsync(HttpContext ctx, StreamingRequest request, CancellationToken ct)
    {
        var upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        string? key = ctx.Request.Headers.SecWebSocketKey;
        if (upgrade == null || !upgrade.IsUpgradableRequest || string.IsNullOrEmpty(key))
        {
            await Error(ctx, 400, "unable to upgrade: not a valid WebSocket handshake").ConfigureAwait(false);
            return;
        }
        var serverProtocols = request is PortForwardRequest ? StreamProtocols.WebSocketPortForward : StreamProtocols.WebSocketRemoteCommand;
        var requested = StreamProtocols.SplitList(ctx.Request.Headers.SecWebSocketProtocol);
        string? protocol = requested.Count == 0 ? "" : StreamProtocols.Negotiate(requested, serverProtocols);
        if (protocol == null)
        {
            ctx.Response.Headers[StreamProtocols.HeaderAcceptedProtocolVersions] = serverProtocols;
            await Error(ctx, 403, $"unable to upgrade: requested protocol(s) are not supported: [{string.Join(" ", requested)}]; supports [{string.Join(" ", serverProtocols)}]").ConfigureAwait(false);
            return;
        }
        bool tunnel = protocol == StreamProtocols.WebSocketSpdyPortForward;
        IReadOnlyList<int>? ports = null;
        if (request is PortForwardRequest pf && !tunnel)
        {
            ports = ForwardedPorts(ctx.Request.Query["port"], pf, out var portError);
            if (ports == null)
            {
                await Error(ctx, 400, portError!).ConfigureAwait(false);
                return;
            }
        }

        ctx.Response.Headers.Upgrade = "websocket";
        ctx.Response.Headers.SecWebSocketAccept = StreamProtocols.WebSocketAccept(key);
        if (protocol.Length > 0) ctx.Response.Headers.SecWebSocketProtocol = protocol;
        var transport = await upgrade.UpgradeAsync().ConfigureAwait(false);
        // No SubProtocol here: .NET checks it is an RFC 6455 token, which the tunnel's "SPDY/3.1+..." is not.
        var socket = WebSocket.CreateFromStream(transport, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.FromSeconds(30) });
        if (tunnel)
        {
            // SPDY frames in binary messages (kubectl 1.31+, the API server's tunnel): the SPDY session owns the idle timer.
            await using var stream = new WebSocketTunnelStream(socket);
            await RunSpdySessionAsync(stream, request, StreamProtocols.PortForwardV1, ct).ConfigureAwait(false);
            return;
        }

        await using var conn = new WebSocketChannelConnection(socket, protocol, ports != null ? ports.Count * 2 : 5, ReadableChannels(request, ports));
        using var idle = new IdleTimer(_options.StreamIdleTimeout);
        conn.Activity = idle.Touch; // as kubelet's wsstream: every message moves the idle deadline
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, idle.Token);
        var readLoop = conn.RunAsync(linked.Token);
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(linked.Token, conn.Closed);

        if (request is PortForwardRequest forward)
        {
            await ServeWebSocketPortForwardAsync(conn, forward, ports!, sessionCts.Token).ConfigureAwait(false);
        }
        else
        {
            var (stdin, stdout, stderr, tty) = Options(request);
            var ch = conn.Channels;
            // kubelet writes an empty message on the lowest writable channel: "connection ready".
            await (stdout ? ch[StreamProtocols.ChannelStdout] : stderr ? ch[StreamProtocols.ChannelStderr] : ch[StreamProtocols.ChannelError]).WriteEmptyAsync(sessionCts.Token).ConfigureAwait(false);
            var channels = new StreamingChannels(stdin ? ch[0] : null, stdout ? ch[1] : null, stderr ? ch[2] : null, tty,
                StreamStatus.ReadResizeEvents(tty ? ch[StreamProtocols.ChannelResize] : null, sessionCts.Token));
            var status = await RunAsync(request, channels, sessionCts.Token).ConfigureAwait(false);
            if (!sessionCts.IsCancellationRequested)
            {
                var bytes = StreamStatus.ForProtocol(protocol, status);
                try { if (bytes.Length > 0) await ch[StreamProtocols.ChannelError].WriteAsync(bytes, CancellationToken.None).ConfigureAwait(false); }
                catch (IOException) { }
            }
        }
        await conn.CloseAsync(_options.CloseLinger).ConfigureAwait(false);
        await linked.CancelAsync().ConfigureAwait(false);
        await readLoop.ConfigureAwait(false);
    }

    /// <summary>
    /// The channels whose messages from the client are read: stdin and resize for exec/attach, each port's data channel
    /// for port-forward (kubelet's read/write channel types). Messages on the others are dropped, so a client writing
    /// where nobody reads cannot stall the connection.
    /// </summary>
    private static IReadOnlyCollection<int> ReadableChannels(StreamingRequest request, IReadOnlyList<int>? ports)
    {
        if (ports != null) return Enumerable.Range(0, ports.Count).Select(i => 2 * i).ToArray();
        var (stdin, _, _, tty) = Options(request);
        var readable = new List<int>();
        if (stdin) readable.Add(StreamProtocols.ChannelStdin);
        if (tty) readable.Add(StreamProtocols.ChannelResize);
        return readable;
    }

    /// <summary>
    /// portforward.k8s.io over WebSocket channels (kubelet's portforward/websocket.go): per port a data channel (2i) and
    /// an error channel (2i+1), each starting with the port as two little-endian bytes.
    /// </summary>
    private async Task ServeWebSocketPortForwardAsync(WebSocketChannelConnection conn, PortForwardRequest pf, IReadOnlyList<int> ports, CancellationToken ct)
    {
        var tasks = new List<Task>();
        for (int i = 0; i < ports.Count; i++)
        {
            var data = conn.Channels[2 * i];
            var error = conn.Channels[2 * i + 1];
            var prefix = new byte[] { (byte)ports[i], (byte)(ports[i] >> 8) };
            await data.WriteAsync(prefix, ct).ConfigureAwait(false);
            await error.WriteAsync(prefix, ct).ConfigureAwait(false);
            int port = ports[i];
            tasks.Add(Task.Run(async () =>
            {
                try { await _runtime.PortForwardAsync(pf.PodSandboxId, port, data, ct).ConfigureAwait(false); }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    var msg = $"error forwarding port {port} to pod {pf.PodSandboxId}: {e.Message}";
                    _log.LogWarning("{Message}", msg);
                    try { await error.WriteAsync(Encoding.UTF8.GetBytes(msg), CancellationToken.None).ConfigureAwait(false); } catch (IOException) { }
                }
                catch (OperationCanceledException) { }
                // The pod side is done: what the client still sends on this channel has nowhere to go.
                data.StopReading();
            }));
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    /// <summary>
    /// The ports to forward over WebSocket channels: the <c>port</c> query values (kubelet's NewV4Options: one or more,
    /// each possibly comma-separated) or, without any, the ports of the CRI request (what containerd's server uses).
    /// </summary>
    internal static IReadOnlyList<int>? ForwardedPorts(IReadOnlyCollection<string?> query, PortForwardRequest request, out string? error)
    {
        error = null;
        if (query.Count == 0)
        {
            if (request.Ports.Count > 0) return request.Ports;
            error = "query parameter \"port\" is required";
            return null;
        }
        var ports = new List<int>();
        foreach (var v in query)
        {
            if (string.IsNullOrEmpty(v)) { error = "query parameter \"port\" cannot be empty"; return null; }
            foreach (var p in v.Split(','))
            {
                if (!ushort.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var port)) { error = $"unable to parse \"{v}\" as a port"; return null; }
                if (port < 1) { error = $"port \"{v}\" must be > 0"; return null; }
                ports.Add(port);
            }
        }
        return ports;
    }

    public async ValueTask DisposeAsync()
    {
        Task? serving;
        lock (_listenerLock)
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            serving = _serving;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (serving != null) await serving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_app != null)
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(stopTimeout.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
        _listener?.Dispose();
        _stopping.Dispose();
    }

    /// <summary>A token that fires when <see cref="Touch"/> was not called for the timeout.</summary>
    private sealed class IdleTimer : IDisposable
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly TimeSpan _timeout;
        public IdleTimer(TimeSpan timeout) { _timeout = timeout; Touch(); }
        public CancellationToken Token => _cts.Token;
        public void Touch()
        {
            if (_timeout == Timeout.InfiniteTimeSpan) return;
            try { _cts.CancelAfter(_timeout); } catch (ObjectDisposedException) { } // a late message after the session ended
        }
        public void Dispose() => _cts.Dispose();
    }
}
