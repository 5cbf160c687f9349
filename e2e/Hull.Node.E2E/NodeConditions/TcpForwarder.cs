using System.Net;
using System.Net.Sockets;

namespace Hull.Node.E2E.NodeConditions;

/// <summary>
/// A port that forwards TCP connections to the API server once <see cref="Open"/> is called: until then nothing
/// listens on it, which for a client is an API server that is down (connection refused). The API server itself stays
/// as it is, so the test does not wait for a restart of it.
/// </summary>
public sealed class TcpForwarder(IPEndPoint target) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private TcpListener? _listener;

    public int Port { get; } = Hull.E2E.Fixtures.RegistryProcess.FreePort();

    public void Open()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _tasks.Add(AcceptAsync(_listener));
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_tasks) _tasks.Add(PipeAsync(client));
        }
    }

    private async Task PipeAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(target, _stop.Token);
                var a = client.GetStream();
                var b = upstream.GetStream();
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener?.Stop();
        Task[] tasks;
        lock (_tasks) tasks = [.. _tasks];
        await Task.WhenAll(tasks);
        _stop.Dispose();
    }
}
