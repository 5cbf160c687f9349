using Hull.Grpc.Telemetry;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Grpc.Http2;

/// <summary>
/// Accepts HTTP/2 prior-knowledge connections on unix or TCP sockets and serves each with an
/// <see cref="Http2Connection"/>, up to <see cref="Http2ServerOptions.MaxConnections"/> at once. Shutdown sends
/// GOAWAY to every connection and drains them.
/// </summary>
public sealed class Http2Server : IAsyncDisposable
{
    private readonly Http2ServerOptions _options;
    private readonly long _maxRequestBody;
    private readonly Http2RequestHandler _handler;
    private readonly ILogger _log;
    private readonly RequestBufferBudget _budget;
    private readonly ConnectionLimitLog _limitLog = new();
    private readonly List<Socket> _listeners = new();
    private readonly List<Task> _acceptLoops = new();
    private readonly Dictionary<Http2Connection, Task> _connections = new();
    private readonly Dictionary<Http2Connection, SocketTransport> _transports = new();
    private readonly CancellationTokenSource _stopping = new();
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(1);

    public Http2Server(Http2ServerOptions options, long maxRequestBody, Http2RequestHandler handler, ILogger? logger = null)
    {
        _options = options;
        _maxRequestBody = maxRequestBody;
        _handler = handler;
        _log = logger ?? NullLogger.Instance;
        _budget = new RequestBufferBudget(options.MaxBufferedRequestBytes);
    }

    public int ConnectionCount { get { lock (_connections) return _connections.Count; } }

    /// <summary>The connections open now (for the debug endpoint).</summary>
    public IReadOnlyList<Http2Connection> Connections { get { lock (_connections) return _connections.Keys.ToArray(); } }

    /// <summary>Listens on a unix socket path. The caller owns the path's permissions and stale-file checks.</summary>
    public void ListenUnix(string path) =>
        Listen(new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified), new UnixDomainSocketEndPoint(path));

    /// <summary>Listens on TCP; returns the bound endpoint (port 0 picks a free port).</summary>
    public IPEndPoint ListenTcp(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Listen(socket, endPoint);
        return (IPEndPoint)socket.LocalEndPoint!;
    }

    private void Listen(Socket socket, EndPoint endPoint)
    {
        try
        {
            socket.Bind(endPoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _listeners.Add(socket);
        _acceptLoops.Add(AcceptLoopAsync(socket));
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested) return;
                // StopAsync closed the listener: retrying would spin (synchronously) until the drain ends.
                if (e is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted }) return;
                continue;
            }
            if (client.AddressFamily != AddressFamily.Unix) client.NoDelay = true;
            bool refuse = ConnectionCount >= _options.MaxConnections;
            GrpcTelemetry.Connections.Add(1, new KeyValuePair<string, object?>("result", refuse ? "refused" : "accepted"));
            if (refuse) _ = RefuseAsync(client);
            else Serve(client);
        }
    }

    private void Serve(Socket client)
    {
        var transport = new SocketTransport(client, _options.MaxFrameSize);
        var connection = new Http2Connection(transport, _options, _maxRequestBody, _handler, _budget, _log, DescribePeer(client));
        lock (_connections)
        {
            _connections[connection] = RunConnectionAsync(connection, transport);
            _transports[connection] = transport;
        }
        transport.Start();
    }

    /// <summary>Over the connection limit: the server preface and a GOAWAY say why, then the socket is closed.</summary>
    private async Task RefuseAsync(Socket client)
    {
        _limitLog.Refused(_log, _options.MaxConnections);
        using (client)
        {
            try
            {
                var goAway = new byte[Http2Limits.FrameHeaderLength * 2 + 8];
                new FrameHeader(0, FrameType.Settings, FrameFlags.None, 0).Write(goAway);
                new FrameHeader(8, FrameType.GoAway, FrameFlags.None, 0).Write(goAway.AsSpan(Http2Limits.FrameHeaderLength));
                BinaryPrimitives.WriteUInt32BigEndian(goAway.AsSpan(Http2Limits.FrameHeaderLength * 2 + 4), (uint)Http2ErrorCode.EnhanceYourCalm);
                GrpcTelemetry.CountGoAway(Http2ErrorCode.EnhanceYourCalm);
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await client.SendAsync(goAway, SocketFlags.None, deadline.Token).ConfigureAwait(false);
                client.Shutdown(SocketShutdown.Send);
                // Closing with unread input would send a reset, which can destroy the GOAWAY before the client reads
                // it: read what it sends until it closes too (a second at most).
                var sink = new byte[1024];
                while (await client.ReceiveAsync(sink, SocketFlags.None, deadline.Token).ConfigureAwait(false) > 0) { }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException) { }
        }
    }

    /// <summary>Who is on the other end, for logs: the process and user of a unix socket peer (SO_PEERCRED), else the address.</summary>
    private static string DescribePeer(Socket client)
    {
        try
        {
            if (client.AddressFamily != AddressFamily.Unix) return client.RemoteEndPoint?.ToString() ?? "unknown peer";
            Span<byte> credentials = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            const int SolSocket = 1, SoPeerCred = 17;
            if (client.GetRawSocketOption(SolSocket, SoPeerCred, credentials) < 12) return "unix socket peer";
            int pid = BinaryPrimitives.ReadInt32LittleEndian(credentials);
            uint uid = BinaryPrimitives.ReadUInt32LittleEndian(credentials[4..]);
            return $"pid {pid} (uid {uid})";
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or PlatformNotSupportedException)
        {
            return "unknown peer";
        }
    }

    private async Task RunConnectionAsync(Http2Connection connection, SocketTransport transport)
    {
        await Task.Yield();
        GrpcTelemetry.OpenConnections.Add(1);
        try
        {
            await connection.RunAsync(_stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            GrpcTelemetry.OpenConnections.Add(-1);
            transport.Dispose();
            lock (_connections)
            {
                _connections.Remove(connection);
                _transports.Remove(connection);
            }
        }
    }

    /// <summary>Stops accepting, sends GOAWAY everywhere and waits up to <paramref name="drainTimeout"/> for in-flight calls.</summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        foreach (var listener in _listeners) listener.Dispose();
        KeyValuePair<Http2Connection, Task>[] live;
        lock (_connections) live = _connections.ToArray();
        // A peer that stops reading blocks its connection's writes (GOAWAY included) for good: once the drain
        // time and a grace period are over, connections still open are cut off by closing their sockets.
        var deadline = Task.Delay(drainTimeout + CloseGrace);
        await Task.WhenAny(Task.WhenAll(live.Select(c => c.Key.ShutdownAsync(drainTimeout))), deadline).ConfigureAwait(false);
        _stopping.Cancel();
        var closed = Task.WhenAll(live.Select(c => c.Value));
        if (await Task.WhenAny(closed, deadline).ConfigureAwait(false) != closed)
        {
            lock (_connections)
                foreach (var transport in _transports.Values) transport.Dispose();
        }
        await closed.ConfigureAwait(false);
        try { await Task.WhenAll(_acceptLoops).ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested) await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Logs refused connections once a minute with a count, so a connection flood is not also a log flood.</summary>
    private sealed class ConnectionLimitLog
    {
        private static readonly long Interval = (long)TimeSpan.FromMinutes(1).TotalMilliseconds;
        private long _loggedAt = long.MinValue / 2;
        private int _refused;

        public void Refused(ILogger log, int limit)
        {
            int refused = Interlocked.Increment(ref _refused);
            long now = Environment.TickCount64;
            long last = Interlocked.Read(ref _loggedAt);
            if (now - last < Interval || Interlocked.CompareExchange(ref _loggedAt, now, last) != last) return;
            Interlocked.Exchange(ref _refused, 0);
            log.LogWarning("HTTP/2 server: {Limit} connections open, the limit: refused {Refused} new connection(s) since the last report",
                limit, refused);
        }
    }
}
