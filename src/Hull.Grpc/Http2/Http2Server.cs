using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace Hull.Grpc.Http2;

/// <summary>
/// Accepts HTTP/2 prior-knowledge connections on unix or TCP sockets and serves each with an
/// <see cref="Http2Connection"/>. Shutdown sends GOAWAY to every connection and drains them.
/// </summary>
public sealed class Http2Server : IAsyncDisposable
{
    private readonly Http2ServerOptions _options;
    private readonly long _maxRequestBody;
    private readonly Http2RequestHandler _handler;
    private readonly List<Socket> _listeners = new();
    private readonly List<Task> _acceptLoops = new();
    private readonly Dictionary<Http2Connection, Task> _connections = new();
    private readonly Dictionary<Http2Connection, NetworkStream> _transports = new();
    private readonly CancellationTokenSource _stopping = new();
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(1);

    public Http2Server(Http2ServerOptions options, long maxRequestBody, Http2RequestHandler handler)
    {
        _options = options;
        _maxRequestBody = maxRequestBody;
        _handler = handler;
    }

    public int ConnectionCount { get { lock (_connections) return _connections.Count; } }

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
            Serve(client);
        }
    }

    private void Serve(Socket client)
    {
        var stream = new NetworkStream(client, ownsSocket: true);
        var transport = new DuplexPipe(
            PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, leaveOpen: true)),
            PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)));
        var connection = new Http2Connection(transport, _options, _maxRequestBody, _handler);
        lock (_connections)
        {
            _connections[connection] = RunConnectionAsync(connection, stream);
            _transports[connection] = stream;
        }
    }

    private async Task RunConnectionAsync(Http2Connection connection, NetworkStream stream)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync(_stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
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

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
