using System.Net;
using System.Net.Sockets;
using System.Text;
using Hull.Streaming;

namespace Hull.Streaming.Tests;

/// <summary>
/// A runtime without containers: exec "echo A B" prints its arguments, "cat" echoes stdin,
/// "exit N" returns N, "resize N" prints N resize events, "sleep" waits for cancellation,
/// "stderr X" writes to stderr, "fail" throws. Port forward connects to 127.0.0.1:port.
/// </summary>
public sealed class FakeStreamingRuntime : IStreamingRuntime
{
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<int> ExecAsync(ExecRequest request, StreamingChannels channels, CancellationToken ct)
    {
        Started.TrySetResult();
        var args = request.Command.Skip(1).ToArray();
        switch (request.Command[0])
        {
            case "echo":
                await Write(channels.Stdout, string.Join(' ', args) + "\n", ct);
                return 0;
            case "stderr":
                await Write(channels.Stderr, string.Join(' ', args) + "\n", ct);
                return 0;
            case "cat":
                if (channels.Stdin != null && channels.Stdout != null) await channels.Stdin.CopyToAsync(channels.Stdout, ct);
                return 0;
            case "exit":
                return int.Parse(args[0]);
            case "resize":
            {
                int want = int.Parse(args[0]), seen = 0;
                await foreach (var size in channels.ResizeEvents.WithCancellation(ct))
                {
                    await Write(channels.Stdout, $"{size.Width}x{size.Height}\n", ct);
                    if (++seen == want) break;
                }
                return 0;
            }
            case "sleep":
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { Cancelled.TrySetResult(); throw; }
                return 0;
            case "big":
            {
                int n = int.Parse(args[0]);
                var block = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
                for (int i = 0; i < n; i++) await channels.Stdout!.WriteAsync(block, ct);
                return 0;
            }
            default:
                throw new InvalidOperationException($"executable file not found: \"{request.Command[0]}\"");
        }
    }

    public async Task AttachAsync(AttachRequest request, StreamingChannels channels, CancellationToken ct)
    {
        await Write(channels.Stdout, "attached\n", ct);
        if (channels.Stdin != null && channels.Stdout != null) await channels.Stdin.CopyToAsync(channels.Stdout, ct);
    }

    public async Task PortForwardAsync(string podSandboxId, int port, Stream stream, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, ct);
        var net = tcp.GetStream();
        using var pumps = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var toPod = Task.Run(async () =>
        {
            try { await stream.CopyToAsync(net, pumps.Token); tcp.Client.Shutdown(SocketShutdown.Send); }
            catch (Exception) { }
        }, CancellationToken.None);
        await net.CopyToAsync(stream, ct);
        // As the container runtime does: once the pod side is done, stop reading the client before returning.
        await pumps.CancelAsync();
        await toPod;
    }

    private static async Task Write(Stream? s, string text, CancellationToken ct)
    {
        if (s == null) return;
        await s.WriteAsync(Encoding.UTF8.GetBytes(text), ct);
    }
}

/// <summary>A TCP server on 127.0.0.1 standing in for a server inside a pod: each connection is served by the handler.</summary>
public class TestTcpServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public TestTcpServer(Func<NetworkStream, Task> serve)
    {
        _listener.Start();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                TcpClient c;
                try { c = await _listener.AcceptTcpClientAsync(); } catch { return; }
                _ = Task.Run(async () =>
                {
                    using (c)
                    {
                        try { await serve(c.GetStream()); } catch (IOException) { }
                    }
                });
            }
        });
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public void Dispose() => _listener.Stop();

    /// <summary>Echoes everything until the client half-closes.</summary>
    public static TestTcpServer Echo() => new(s => s.CopyToAsync(s));

    /// <summary>Reads <paramref name="request"/> bytes, answers <paramref name="reply"/> and closes: the pod side ends first.</summary>
    public static TestTcpServer AnswerAndClose(int request, string reply) => new(async s =>
    {
        await s.ReadExactlyAsync(new byte[request]);
        await s.WriteAsync(Encoding.UTF8.GetBytes(reply));
    });
}

/// <summary>A one-shot "pong" server: answers the first read with "pong:" and what it read, then closes.</summary>
public sealed class PongServer() : TestTcpServer(async s =>
{
    var buf = new byte[4096];
    int n = await s.ReadAsync(buf);
    await s.WriteAsync(Encoding.UTF8.GetBytes("pong:" + Encoding.UTF8.GetString(buf, 0, n)));
});
