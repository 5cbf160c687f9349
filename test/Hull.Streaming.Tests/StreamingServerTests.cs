using System.Text;
using Hull.Streaming;
using Hull.Streaming.Client;

namespace Hull.Streaming.Tests;

public sealed class StreamingServerFixture : IAsyncLifetime
{
    public FakeStreamingRuntime Runtime { get; private set; } = new();
    public StreamingServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = new StreamingServer(Runtime, new StreamingServerOptions { Port = 0, StreamCreationTimeout = TimeSpan.FromSeconds(5), CloseLinger = TimeSpan.FromMilliseconds(500) });
        await Server.StartAsync();
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public class StreamingServerTests(StreamingServerFixture f) : IClassFixture<StreamingServerFixture>
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    private Uri Exec(string cmd, bool stdin = false, bool tty = false, bool stderr = true) =>
        f.Server.GetUrl(new ExecRequest("c1", cmd.Split(' '), tty, stdin, true, stderr));

    private static async Task<(int Code, string Out, string Err)> SpdyExec(Uri url, string? stdin, bool tty = false, IAsyncEnumerable<TerminalSize>? resizes = null, string protocol = StreamProtocols.RemoteCommandV4)
    {
        await using var conn = await StreamingClient.ConnectSpdyAsync(url, [protocol]);
        Assert.Equal(protocol, conn.Protocol);
        var o = new MemoryStream();
        var e = new MemoryStream();
        int code = await StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(stdin != null, true, !tty, tty),
            stdin == null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin)), o, e, resizes).WaitAsync(Limit);
        return (code, Encoding.UTF8.GetString(o.ToArray()), Encoding.UTF8.GetString(e.ToArray()));
    }

    [Fact]
    public async Task Spdy_exec_echo_without_stdin()
    {
        var (code, stdout, _) = await SpdyExec(Exec("echo hello world"), null);
        Assert.Equal((0, "hello world\n"), (code, stdout));
    }

    [Fact]
    public async Task Spdy_exec_stderr_is_separate()
    {
        var (_, stdout, stderr) = await SpdyExec(Exec("stderr oops"), null);
        Assert.Equal(("", "oops\n"), (stdout, stderr));
    }

    [Fact]
    public async Task Spdy_exec_cat_with_stdin()
    {
        var (code, stdout, _) = await SpdyExec(Exec("cat", stdin: true), "line1\nline2\n");
        Assert.Equal((0, "line1\nline2\n"), (code, stdout));
    }

    [Fact]
    public async Task Spdy_exec_cat_moves_a_megabyte_through_flow_control()
    {
        var big = new string('a', 1 << 20);
        var (code, stdout, _) = await SpdyExec(Exec("cat", stdin: true), big);
        Assert.Equal(0, code);
        Assert.Equal(big.Length, stdout.Length);
    }

    [Fact]
    public async Task Spdy_exec_reports_exit_code_through_v4_status()
    {
        var (code, _, _) = await SpdyExec(Exec("exit 42"), null);
        Assert.Equal(42, code);
    }

    [Fact]
    public async Task Spdy_exec_on_v3_reports_failure_as_text()
    {
        var ex = await Assert.ThrowsAsync<RemoteCommandException>(() => SpdyExec(Exec("exit 3"), null, protocol: StreamProtocols.RemoteCommandV3));
        Assert.Contains("non-zero exit code", ex.Message);
    }

    [Fact]
    public async Task Spdy_exec_runtime_error_is_an_internal_error_status()
    {
        var ex = await Assert.ThrowsAsync<RemoteCommandException>(() => SpdyExec(Exec("nosuchcmd"), null));
        Assert.Contains("executable file not found", ex.Message);
    }

    [Fact]
    public async Task Spdy_exec_tty_delivers_resize_events()
    {
        var (code, stdout, _) = await SpdyExec(Exec("resize 2", stdin: true, tty: true), "", tty: true, resizes: Sizes());
        Assert.Equal((0, "80x24\n120x40\n"), (code, stdout));
    }

    private static async IAsyncEnumerable<TerminalSize> Sizes()
    {
        yield return new TerminalSize(80, 24);
        await Task.Yield();
        yield return new TerminalSize(120, 40);
    }

    [Fact]
    public async Task Spdy_attach_streams_stdio()
    {
        var url = f.Server.GetUrl(new AttachRequest("c1", false, true, true, false));
        await using var conn = await StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.RemoteCommandV4]);
        var o = new MemoryStream();
        int code = await StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(true, true, false, false), new MemoryStream("hi\n"u8.ToArray()), o, null).WaitAsync(Limit);
        Assert.Equal((0, "attached\nhi\n"), (code, Encoding.UTF8.GetString(o.ToArray())));
    }

    [Fact]
    public async Task Spdy_port_forward_to_a_closed_port_reports_on_the_error_stream()
    {
        int closed;
        using (var pong = new PongServer()) closed = pong.Port;
        var url = f.Server.GetUrl(new PortForwardRequest("pod1", [closed]));
        await using var conn = await StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.PortForwardV1]);
        var (_, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, closed, 7);
        Assert.Contains($"error forwarding port {closed} to pod pod1", await error.WaitAsync(Limit));
    }

    [Fact]
    public async Task Unknown_and_reused_tokens_are_404()
    {
        var url = Exec("echo once");
        await SpdyExec(url, null);
        var reused = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.RemoteCommandV4]));
        Assert.Equal(404, reused.StatusCode);
        var unknown = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyAsync(new Uri(f.Server.BaseAddress, "exec/nope"), [StreamProtocols.RemoteCommandV4]));
        Assert.Equal(404, unknown.StatusCode);
        var wrongKind = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyAsync(new Uri(f.Server.BaseAddress, "attach/" + Exec("echo").Segments[^1]), [StreamProtocols.RemoteCommandV4]));
        Assert.Equal(404, wrongKind.StatusCode);
    }

    [Fact]
    public async Task Unoffered_protocol_is_403_with_the_accepted_list()
    {
        var ex = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyAsync(Exec("echo"), ["v99.channel.k8s.io"]));
        Assert.Equal(403, ex.StatusCode);
        Assert.Equal(StreamProtocols.SpdyRemoteCommand, ex.Headers[StreamProtocols.HeaderAcceptedProtocolVersions]);
        Assert.Contains("unable to negotiate protocol", ex.Body);
    }

    [Fact]
    public async Task Client_disconnect_mid_stream_cancels_the_session()
    {
        var (runtime, server) = await OwnServerAsync(new StreamingServerOptions());
        await using var started = server;
        var conn = await StreamingClient.ConnectSpdyAsync(server.GetUrl(new ExecRequest("c1", ["sleep"], false, true, true, false)), [StreamProtocols.RemoteCommandV4]);
        _ = StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(true, true, false, false), new BlockingStream(), Stream.Null, null);
        await runtime.Started.Task.WaitAsync(Limit);
        await conn.DisposeAsync();
        await runtime.Cancelled.Task.WaitAsync(Limit);
    }

    [Fact]
    public async Task WebSocket_disconnect_mid_stream_cancels_the_session()
    {
        var (runtime, server) = await OwnServerAsync(new StreamingServerOptions());
        await using var started = server;
        var conn = await StreamingClient.ConnectWebSocketAsync(server.GetUrl(new ExecRequest("c1", ["sleep"], false, false, true, false)), [StreamProtocols.RemoteCommandV5], 5);
        _ = conn.RunAsync(default);
        await runtime.Started.Task.WaitAsync(Limit);
        await conn.DisposeAsync();
        await runtime.Cancelled.Task.WaitAsync(Limit);
    }

    [Theory]
    [InlineData(StreamProtocols.RemoteCommandV5)]
    [InlineData(StreamProtocols.RemoteCommandV4)]
    [InlineData(StreamProtocols.WebSocketBase64V4)]
    public async Task WebSocket_exec_echo_and_exit_code(string protocol)
    {
        await using var conn = await StreamingClient.ConnectWebSocketAsync(Exec("echo via ws"), [protocol], 5);
        Assert.Equal(protocol, conn.Protocol);
        var o = new MemoryStream();
        int code = await StreamingClient.RunWebSocketAsync(conn, new RemoteCommandOptions(false, true, true, false), null, o, Stream.Null).WaitAsync(Limit);
        Assert.Equal((0, "via ws\n"), (code, Encoding.UTF8.GetString(o.ToArray())));

        await using var conn2 = await StreamingClient.ConnectWebSocketAsync(Exec("exit 7"), [protocol], 5);
        Assert.Equal(7, await StreamingClient.RunWebSocketAsync(conn2, new RemoteCommandOptions(false, true, true, false), null, Stream.Null, Stream.Null).WaitAsync(Limit));
    }

    [Fact]
    public async Task WebSocket_v5_stdin_close_signal_ends_cat()
    {
        await using var conn = await StreamingClient.ConnectWebSocketAsync(Exec("cat", stdin: true), [StreamProtocols.RemoteCommandV5], 5);
        var o = new MemoryStream();
        int code = await StreamingClient.RunWebSocketAsync(conn, new RemoteCommandOptions(true, true, true, false), new MemoryStream("abc"u8.ToArray()), o, Stream.Null).WaitAsync(Limit);
        Assert.Equal((0, "abc"), (code, Encoding.UTF8.GetString(o.ToArray())));
    }

    [Fact]
    public async Task WebSocket_tty_resize()
    {
        await using var conn = await StreamingClient.ConnectWebSocketAsync(Exec("resize 2", tty: true), [StreamProtocols.RemoteCommandV4], 5);
        var o = new MemoryStream();
        int code = await StreamingClient.RunWebSocketAsync(conn, new RemoteCommandOptions(false, true, false, true), null, o, null, Sizes()).WaitAsync(Limit);
        Assert.Equal((0, "80x24\n120x40\n"), (code, Encoding.UTF8.GetString(o.ToArray())));
    }

    [Fact]
    public async Task WebSocket_unoffered_protocol_is_403()
    {
        var ex = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectWebSocketAsync(Exec("echo"), ["v99.channel.k8s.io"], 5));
        Assert.Equal(403, ex.StatusCode);
    }

    [Fact]
    public async Task WebSocket_port_forward_prefixes_each_channel_with_the_port()
    {
        using var pong = new PongServer();
        var url = new Uri(f.Server.GetUrl(new PortForwardRequest("pod1", [pong.Port])) + $"?port={pong.Port}");
        await using var conn = await StreamingClient.ConnectWebSocketAsync(url, [StreamProtocols.RemoteCommandV4], 2);
        var loop = conn.RunAsync(default);
        var data = conn.Channels[0];
        await data.WriteAsync("ping"u8.ToArray());
        var got = new MemoryStream();
        await data.CopyToAsync(got).WaitAsync(Limit);
        var bytes = got.ToArray();
        Assert.Equal(pong.Port, bytes[0] | (bytes[1] << 8));
        Assert.Equal("pong:ping", Encoding.UTF8.GetString(bytes, 2, bytes.Length - 2));
        await loop.WaitAsync(Limit);
    }

    [Fact]
    public async Task WebSocket_session_with_traffic_outlives_the_idle_timeout()
    {
        // The margin is wide because a loaded machine stretches the gaps (a 600 ms timeout failed under CI load).
        var (runtime, server) = await OwnServerAsync(new StreamingServerOptions { StreamIdleTimeout = TimeSpan.FromMilliseconds(1500) });
        await using var started = server;
        await using var conn = await StreamingClient.ConnectWebSocketAsync(server.GetUrl(new ExecRequest("c1", ["cat"], false, true, true, false)), [StreamProtocols.RemoteCommandV5], 5);
        var o = new MemoryStream();
        // A keystroke every 150 ms for 3 s: never idle for 1.5 s, but busy for twice that.
        int code = await StreamingClient.RunWebSocketAsync(conn, new RemoteCommandOptions(true, true, false, false), new TrickleStream(20, TimeSpan.FromMilliseconds(150)), o, null).WaitAsync(Limit);
        Assert.Equal((0, new string('k', 20)), (code, Encoding.ASCII.GetString(o.ToArray())));
        Assert.False(runtime.Cancelled.Task.IsCompleted);
    }

    [Fact]
    public async Task WebSocket_session_without_traffic_ends_at_the_idle_timeout()
    {
        var (runtime, server) = await OwnServerAsync(new StreamingServerOptions { StreamIdleTimeout = TimeSpan.FromMilliseconds(300) });
        await using var started = server;
        await using var conn = await StreamingClient.ConnectWebSocketAsync(server.GetUrl(new ExecRequest("c1", ["sleep"], false, false, true, false)), [StreamProtocols.RemoteCommandV5], 5);
        _ = conn.RunAsync(default);
        await runtime.Cancelled.Task.WaitAsync(Limit);
    }

    [Fact]
    public async Task WebSocket_messages_on_write_only_channels_are_dropped_without_stalling_the_session()
    {
        await using var conn = await StreamingClient.ConnectWebSocketAsync(Exec("cat", stdin: true), [StreamProtocols.RemoteCommandV4], 5);
        var loop = conn.RunAsync(default);
        // 3 MiB on the error channel, which only the server writes: beyond what any channel buffers.
        for (int i = 0; i < 3; i++) await conn.Channels[StreamProtocols.ChannelError].WriteAsync(new byte[1 << 20]).AsTask().WaitAsync(Limit);
        await conn.Channels[StreamProtocols.ChannelStdin].WriteAsync("after"u8.ToArray());
        var echoed = new byte[5];
        await conn.Channels[StreamProtocols.ChannelStdout].ReadExactlyAsync(echoed).AsTask().WaitAsync(Limit);
        Assert.Equal("after", Encoding.ASCII.GetString(echoed));
        await conn.DisposeAsync();
        await loop.WaitAsync(Limit);
    }

    /// <summary>A server and runtime for one test, apart from the shared fixture.</summary>
    [Fact]
    public async Task Kestrel_starts_with_the_first_url_and_a_client_that_connects_at_once_is_served()
    {
        var (_, server) = await OwnServerAsync(new StreamingServerOptions());
        await using var started = server;
        // The port is bound and known from the start; the HTTP server waits until a URL is handed out.
        Assert.NotEqual(0, server.BaseAddress.Port);
        Assert.False(server.Serving);
        var url = server.GetUrl(new ExecRequest("c1", ["echo", "first"], false, false, true, true));
        await using var conn = await StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.RemoteCommandV4]); // may wait in the backlog
        var o = new MemoryStream();
        int code = await StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(false, true, true, false), null, o, new MemoryStream(), null).WaitAsync(Limit);
        Assert.Equal((0, "first\n"), (code, Encoding.UTF8.GetString(o.ToArray())));
        Assert.True(server.Serving);
    }

    [Fact]
    public async Task A_taken_port_fails_the_start_naming_address_and_port()
    {
        var (_, first) = await OwnServerAsync(new StreamingServerOptions());
        await using var started = first;
        int port = first.BaseAddress.Port;
        await using var second = new StreamingServer(new FakeStreamingRuntime(), new StreamingServerOptions { Port = port });
        var e = await Assert.ThrowsAsync<IOException>(() => second.StartAsync());
        Assert.Contains($"cannot listen on 127.0.0.1 port {port}", e.Message);
        Assert.Throws<InvalidOperationException>(() => second.GetUrl(new PortForwardRequest("pod1", [80])));
    }

    internal static async Task<(FakeStreamingRuntime Runtime, StreamingServer Server)> OwnServerAsync(StreamingServerOptions options)
    {
        var runtime = new FakeStreamingRuntime();
        var server = new StreamingServer(runtime, options);
        await server.StartAsync();
        return (runtime, server);
    }

    /// <summary>Yields one 'k' per read after a delay, then ends.</summary>
    private sealed class TrickleStream(int count, TimeSpan every) : MemoryStream
    {
        private int _left = count;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_left-- <= 0) return 0;
            await Task.Delay(every, cancellationToken);
            buffer.Span[0] = (byte)'k';
            return 1;
        }
    }

    /// <summary>A stdin that never ends.</summary>
    private sealed class BlockingStream : MemoryStream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }
    }
}
