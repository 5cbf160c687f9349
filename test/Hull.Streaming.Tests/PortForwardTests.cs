using System.Net.WebSockets;
using System.Text;
using Hull.Streaming.Client;
using Hull.Streaming.Spdy;

namespace Hull.Streaming.Tests;

/// <summary>
/// Port-forward over the three transports the kubelet's clients use: SPDY, the WebSocket channel protocol (per port a
/// data and an error channel), and SPDY tunnelled through a WebSocket (<c>SPDY/3.1+portforward.k8s.io</c>).
/// </summary>
public class PortForwardTests(StreamingServerFixture f) : IClassFixture<StreamingServerFixture>
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    private Uri Url(params int[] ports) => f.Server.GetUrl(new PortForwardRequest("pod1", ports));

    /// <summary>A SPDY port-forward session, upgraded directly or tunnelled through a WebSocket.</summary>
    private static Task<SpdyClientConnection> ConnectAsync(string transport, Uri url) => transport switch
    {
        "spdy" => StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.PortForwardV1]),
        "tunnel" => StreamingClient.ConnectSpdyOverWebSocketAsync(url, [StreamProtocols.PortForwardV1]),
        _ => throw new ArgumentException(transport),
    };

    [Theory]
    [InlineData("spdy")]
    [InlineData("tunnel")] // the WebSocket subprotocol SPDY/3.1+portforward.k8s.io, the SPDY protocol portforward.k8s.io
    public async Task Spdy_port_forward_round_trips_data(string transport)
    {
        using var pong = new PongServer();
        await using var conn = await ConnectAsync(transport, Url(pong.Port));
        Assert.Equal(StreamProtocols.PortForwardV1, conn.Protocol);
        var (data, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, pong.Port, 0);
        await data.WriteAsync("ping"u8.ToArray());
        var got = new MemoryStream();
        await data.CopyToAsync(got).WaitAsync(Limit);
        Assert.Equal("pong:ping", Encoding.UTF8.GetString(got.ToArray()));
        Assert.Equal("", await error.WaitAsync(Limit));
    }

    [Fact]
    public async Task Spdy_tunnel_carries_concurrent_connections_and_reports_errors_per_connection()
    {
        using var echo = TestTcpServer.Echo();
        int closed;
        using (var gone = new PongServer()) closed = gone.Port;
        await using var conn = await StreamingClient.ConnectSpdyOverWebSocketAsync(Url(), [StreamProtocols.PortForwardV1]);
        var payload = new byte[300 * 1024];
        new Random(7).NextBytes(payload);
        // Several connections at once, each bigger than a flow-control window.
        var echoes = Enumerable.Range(0, 3).Select(async i =>
        {
            var (data, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, echo.Port, i);
            var read = ReadAllAsync(data);
            await data.WriteAsync(payload);
            await data.CloseWriteAsync();
            Assert.Equal(payload, await read.WaitAsync(Limit));
            Assert.Equal("", await error.WaitAsync(Limit));
        }).ToList();
        var (_, refused) = await StreamingClient.OpenSpdyPortForwardAsync(conn, closed, 9);
        Assert.Contains($"error forwarding port {closed} to pod pod1", await refused.WaitAsync(Limit));
        await Task.WhenAll(echoes);
    }

    [Fact]
    public async Task Spdy_tunnel_is_offered_for_port_forward_only()
    {
        var exec = f.Server.GetUrl(new ExecRequest("c1", ["echo"], false, false, true, false));
        var e = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyOverWebSocketAsync(exec, [StreamProtocols.RemoteCommandV4]));
        Assert.Equal(403, e.StatusCode);
    }

    [Fact]
    public void WebSocket_negotiation_follows_the_clients_order_between_tunnel_and_channels()
    {
        Assert.Equal(StreamProtocols.RemoteCommandV4,
            StreamProtocols.Negotiate([StreamProtocols.RemoteCommandV4, StreamProtocols.WebSocketSpdyPortForward], StreamProtocols.WebSocketPortForward));
        Assert.Equal(StreamProtocols.WebSocketSpdyPortForward,
            StreamProtocols.Negotiate(["SPDY/3.1+v9.portforward.k8s.io", StreamProtocols.WebSocketSpdyPortForward, StreamProtocols.RemoteCommandV4], StreamProtocols.WebSocketPortForward));
        Assert.Null(StreamProtocols.Negotiate([StreamProtocols.WebSocketSpdyPortForward], StreamProtocols.WebSocketRemoteCommand));
    }

    [Theory]
    [InlineData("?port={0}&port={1}")]
    [InlineData("?port={0},{1}")]
    [InlineData("")] // no query: the ports of the CRI request, as containerd's server does
    public async Task WebSocket_channels_come_in_pairs_per_port_each_starting_with_its_port(string query)
    {
        using var a = new PongServer();
        using var b = new PongServer();
        var url = new Uri(Url(a.Port, b.Port) + string.Format(System.Globalization.CultureInfo.InvariantCulture, query, a.Port, b.Port));
        await using var conn = await StreamingClient.ConnectWebSocketAsync(url, [StreamProtocols.RemoteCommandV4], 4);
        var loop = conn.RunAsync(default);
        await conn.Channels[0].WriteAsync("to-a"u8.ToArray());
        await conn.Channels[2].WriteAsync("to-b"u8.ToArray());
        var (dataA, errorA, dataB, errorB) = (ReadAllAsync(conn.Channels[0]), ReadAllAsync(conn.Channels[1]), ReadAllAsync(conn.Channels[2]), ReadAllAsync(conn.Channels[3]));
        await loop.WaitAsync(Limit); // the server closes once both pod connections are done
        Assert.Equal(Port(a.Port) + "pong:to-a", Encoding.Latin1.GetString(await dataA));
        Assert.Equal(Port(b.Port) + "pong:to-b", Encoding.Latin1.GetString(await dataB));
        Assert.Equal(Port(a.Port), Encoding.Latin1.GetString(await errorA));
        Assert.Equal(Port(b.Port), Encoding.Latin1.GetString(await errorB));
    }

    /// <summary>The channel prefix: the port as two little-endian bytes.</summary>
    private static string Port(int port) => Encoding.Latin1.GetString([(byte)port, (byte)(port >> 8)]);

    [Fact]
    public async Task WebSocket_error_channel_says_why_a_port_failed()
    {
        int closed;
        using (var gone = new PongServer()) closed = gone.Port;
        await using var conn = await StreamingClient.ConnectWebSocketAsync(new Uri(Url() + $"?port={closed}"), [StreamProtocols.WebSocketBase64V4], 2);
        var loop = conn.RunAsync(default);
        var error = ReadAllAsync(conn.Channels[1]);
        await loop.WaitAsync(Limit);
        var text = Encoding.Latin1.GetString(await error);
        Assert.StartsWith(Port(closed), text);
        Assert.Contains($"error forwarding port {closed} to pod pod1", text);
    }

    [Theory]
    [InlineData("?port=", "query parameter \"port\" cannot be empty")]
    [InlineData("?port=0", "port \"0\" must be > 0")]
    [InlineData("?port=http", "unable to parse \"http\" as a port")]
    [InlineData("?port=80,70000", "unable to parse \"80,70000\" as a port")]
    [InlineData("", "query parameter \"port\" is required")]
    public void WebSocket_port_query_is_checked_as_the_kubelet_does(string query, string error)
    {
        var values = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query).GetValueOrDefault("port");
        Assert.Null(StreamingServer.ForwardedPorts(values, new PortForwardRequest("pod1", []), out var message));
        Assert.Equal(error, message);
    }

    [Fact]
    public async Task WebSocket_port_forward_without_any_port_is_refused()
    {
        var e = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectWebSocketAsync(new Uri(Url() + "?port=0"), [StreamProtocols.RemoteCommandV4], 2));
        Assert.Equal(400, e.StatusCode);
        e = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectWebSocketAsync(Url(), [StreamProtocols.RemoteCommandV4], 2));
        Assert.Equal(400, e.StatusCode);
    }

    [Theory]
    [InlineData("spdy")]
    [InlineData("tunnel")]
    public async Task When_the_pod_side_closes_first_the_stream_is_reset_so_a_client_still_writing_does_not_stall(string transport)
    {
        using var closer = TestTcpServer.AnswerAndClose(4, "bye");
        using var echo = TestTcpServer.Echo();
        await using var conn = await ConnectAsync(transport, Url());
        var (data, _) = await StreamingClient.OpenSpdyPortForwardAsync(conn, closer.Port, 0);
        await data.WriteAsync("ping"u8.ToArray());
        Assert.Equal("bye", Encoding.UTF8.GetString(await ReadAllAsync(data).WaitAsync(Limit)));
        // Far more than a window: without the reset this write waits for WINDOW_UPDATEs forever.
        var stalled = data.WriteAsync(new byte[1 << 20]).AsTask();
        var e = await Assert.ThrowsAsync<IOException>(() => stalled.WaitAsync(Limit));
        Assert.Contains("reset", e.Message);
        Assert.Equal(SpdyRstStatus.Cancel, data.ResetStatus);

        // The session is intact, its window included: another connection moves more than a window both ways.
        var payload = new byte[200 * 1024];
        new Random(3).NextBytes(payload);
        var (again, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, echo.Port, 1);
        var read = ReadAllAsync(again);
        await again.WriteAsync(payload).AsTask().WaitAsync(Limit);
        await again.CloseWriteAsync();
        Assert.Equal(payload, await read.WaitAsync(Limit));
        Assert.Equal("", await error.WaitAsync(Limit));
    }

    [Fact]
    public async Task WebSocket_channel_port_forward_drops_what_the_client_sends_after_the_pod_side_closed()
    {
        using var closer = TestTcpServer.AnswerAndClose(4, "bye");
        using var echo = TestTcpServer.Echo();
        await using var conn = await StreamingClient.ConnectWebSocketAsync(new Uri(Url() + $"?port={closer.Port}&port={echo.Port}"), [StreamProtocols.RemoteCommandV4], 4);
        var loop = conn.RunAsync(default);
        await conn.Channels[0].WriteAsync("ping"u8.ToArray());
        var first = new byte[5];
        await conn.Channels[0].ReadExactlyAsync(first).AsTask().WaitAsync(Limit);
        Assert.Equal(Port(closer.Port) + "bye", Encoding.Latin1.GetString(first));
        // The first port's pod side is gone; the client keeps sending on its channel (3 MiB: beyond any buffer).
        for (int i = 0; i < 3; i++) await conn.Channels[0].WriteAsync(new byte[1 << 20]).AsTask().WaitAsync(Limit);
        // The other port still works: the connection's reader was not stuck behind the dead channel.
        await conn.Channels[2].WriteAsync("still here"u8.ToArray());
        var echoed = new byte[2 + 10];
        await conn.Channels[2].ReadExactlyAsync(echoed).AsTask().WaitAsync(Limit);
        Assert.Equal(Port(echo.Port) + "still here", Encoding.Latin1.GetString(echoed));
        await conn.DisposeAsync();
        await loop.WaitAsync(Limit);
    }

    /// <summary>A connected pair of WebSockets; the server end wrapped as a tunnel stream.</summary>
    private static async Task<(WebSocketTunnelStream Tunnel, WebSocket Client)> TunnelPair()
    {
        var (a, b) = await SpdyFramingTests.SocketPair();
        return (new WebSocketTunnelStream(WebSocket.CreateFromStream(a, new WebSocketCreationOptions { IsServer = true })),
            WebSocket.CreateFromStream(b, new WebSocketCreationOptions { IsServer = false }));
    }

    [Fact]
    public async Task Tunnel_stream_writes_one_binary_message_each_and_reads_across_message_boundaries()
    {
        var (tunnel, client) = await TunnelPair();
        await using var _ = tunnel;
        using var __ = client;
        await tunnel.WriteAsync("frame-one"u8.ToArray());
        var buffer = new byte[64];
        var r = await client.ReceiveAsync(buffer, default);
        Assert.Equal((WebSocketMessageType.Binary, true, "frame-one"), (r.MessageType, r.EndOfMessage, Encoding.ASCII.GetString(buffer, 0, r.Count)));

        await client.SendAsync("ab"u8.ToArray(), WebSocketMessageType.Binary, true, default);
        await client.SendAsync(Array.Empty<byte>(), WebSocketMessageType.Binary, true, default);
        await client.SendAsync("cd"u8.ToArray(), WebSocketMessageType.Binary, true, default);
        var got = new byte[4];
        await tunnel.ReadExactlyAsync(got);
        Assert.Equal("abcd", Encoding.ASCII.GetString(got));

        await client.SendAsync("text"u8.ToArray(), WebSocketMessageType.Text, true, default);
        await Assert.ThrowsAsync<InvalidDataException>(() => tunnel.ReadAsync(got).AsTask());
    }

    [Fact]
    public async Task Tunnel_stream_ends_with_a_clean_close()
    {
        var (tunnel, client) = await TunnelPair();
        await using var _ = tunnel;
        using var __ = client;
        var closing = client.CloseAsync(WebSocketCloseStatus.NormalClosure, null, default);
        int n = await tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Limit);
        Assert.Equal(0, n);
        await closing.WaitAsync(Limit); // the tunnel answered the close
        Assert.Equal(WebSocketState.Closed, client.State);
    }

    private static async Task<byte[]> ReadAllAsync(Stream s)
    {
        var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }
}
