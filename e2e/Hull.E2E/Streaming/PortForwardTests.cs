using System.Text;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using StreamProtocols = Hull.Streaming.StreamProtocols;
using Hull.Streaming.Client;

namespace Hull.E2E.Streaming;

/// <summary>
/// CRI PortForward to busybox httpd servers listening on the loopback of a real pod, over the transports current
/// clients use: SPDY, the WebSocket channel protocol (a data and an error channel per port), and SPDY tunnelled through
/// a WebSocket (<c>SPDY/3.1+portforward.k8s.io</c>, kubectl 1.31+ and critest -websocket-portforward); Hull's client and
/// the npm clients. httpd closes after each HTTP/1.0 answer, so the pod side always ends first.
/// </summary>
public sealed class PortForwardTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private static readonly byte[] Get = "GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray();

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci", "node")]
    public async Task Port_forward_reaches_servers_in_the_pod_over_spdy_websocket_channels_and_the_spdy_tunnel()
    {
        var (env, pod, id) = await AttachWebSocketTests.StartAsync(pushed, "port-forward", false, "/bin/sh", "-c",
            "for p in 8080 8081; do mkdir -p /tmp/www$p && echo hello-$p > /tmp/www$p/index.html && (httpd -f -p 127.0.0.1:$p -h /tmp/www$p &); done; " +
            "trap 'exit 0' TERM; while true; do sleep 0.2; done");
        await using var _ = env;
        async Task<Uri> Url(params int[] ports) =>
            new((await env.Cri.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = pod, Port = { ports } })).Url);
        using var timeout = new CancellationTokenSource(Long);
        var ct = timeout.Token;

        // 1. SPDY, directly and through the WebSocket tunnel: an answer, then the reset that stops a client still writing.
        foreach (var tunnel in new[] { false, true })
        {
            var url = await Url(8080);
            await using var conn = tunnel
                ? await StreamingClient.ConnectSpdyOverWebSocketAsync(url, [StreamProtocols.PortForwardV1], ct)
                : await StreamingClient.ConnectSpdyAsync(url, [StreamProtocols.PortForwardV1], ct);
            Assert.Equal(StreamProtocols.PortForwardV1, conn.Protocol);
            for (int request = 0; request < 2; request++)
            {
                var (data, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, 8080 + request, request, ct);
                await data.WriteAsync(Get, ct);
                Assert.Contains($"hello-{8080 + request}", Encoding.UTF8.GetString(await ReadAllAsync(data, ct)));
                Assert.Equal("", await error.WaitAsync(ct));
                var stalled = data.WriteAsync(new byte[1 << 20], ct).AsTask();
                var reset = await Assert.ThrowsAsync<IOException>(() => stalled.WaitAsync(ct));
                Assert.Contains("reset", reset.Message);
            }
            var (_, refused) = await StreamingClient.OpenSpdyPortForwardAsync(conn, 8082, 9, ct);
            Assert.Contains("8082", await refused.WaitAsync(ct));
        }

        // 2. WebSocket channels: a pair per port from ?port=, or from the CRI request without a query.
        {
            await using var ws = await StreamingClient.ConnectWebSocketAsync(new Uri((await Url(8080)) + "?port=8080&port=8081"), [StreamProtocols.RemoteCommandV4], 4, ct);
            var loop = ws.RunAsync(ct);
            await ws.Channels[0].WriteAsync(Get, ct);
            await ws.Channels[2].WriteAsync(Get, ct);
            var (first, second) = (ReadAllAsync(ws.Channels[0], ct), ReadAllAsync(ws.Channels[2], ct));
            await loop.WaitAsync(ct); // hulld closes the WebSocket once both answers are through
            AssertPortPrefixed(8080, await first, "hello-8080");
            AssertPortPrefixed(8081, await second, "hello-8081");
        }
        {
            await using var ws = await StreamingClient.ConnectWebSocketAsync(await Url(8081), [StreamProtocols.WebSocketBase64V4], 2, ct);
            var loop = ws.RunAsync(ct);
            await ws.Channels[0].WriteAsync(Get, ct);
            var answer = ReadAllAsync(ws.Channels[0], ct);
            await loop.WaitAsync(ct);
            AssertPortPrefixed(8081, await answer, "hello-8081");
        }

        // 3. Clients Hull did not write: npm ws on channel pairs, websocket-driver + spdy-transport through the tunnel.
        var node = await StreamingTests.RunNodeClient(new { proto = "ws", kind = "portforward", url = (await Url(8080)) + "?port=8080,8081",
            protocols = new[] { "v4.channel.k8s.io" }, payload = Encoding.ASCII.GetString(Get), portCount = 2 });
        Assert.Equal((8080, 8081), ((int?)node["port0"], (int?)node["port2"]));
        Assert.Contains("hello-8080", (string?)node["data"]);
        Assert.Contains("hello-8081", (string?)node["data1"]);
        node = await StreamingTests.RunNodeClient(new { proto = "ws-spdy", kind = "portforward", url = (await Url()).ToString(),
            protocols = new[] { "portforward.k8s.io" }, port = 8081, payload = Encoding.ASCII.GetString(Get), writeAfterEnd = 1 << 20 });
        Assert.Equal("SPDY/3.1+portforward.k8s.io", (string?)node["protocol"]);
        Assert.Contains("hello-8081", (string?)node["data"]);
        Assert.True((bool?)node["reset"], "the tunnelled stream was not reset after httpd closed: " + node.ToJsonString());

        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
    }

    private static void AssertPortPrefixed(int port, byte[] channel, string content)
    {
        Assert.True(channel.Length > 2, $"channel of port {port} is empty");
        Assert.Equal(port, channel[0] | channel[1] << 8);
        Assert.Contains(content, Encoding.UTF8.GetString(channel, 2, channel.Length - 2));
    }

    private static async Task<byte[]> ReadAllAsync(Stream s, CancellationToken ct)
    {
        var ms = new MemoryStream();
        await s.CopyToAsync(ms, ct);
        return ms.ToArray();
    }
}
