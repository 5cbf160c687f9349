using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Streaming;

namespace Hull.Streaming.Tests;

/// <summary>
/// Drives the server with independent implementations: npm spdy (spdy-transport) and npm ws, via
/// e2e/interop/streaming/client.js. Needs node and `npm ci` in that folder (hack/install-deps.sh).
/// </summary>
public class NodeInteropTests(StreamingServerFixture f) : IClassFixture<StreamingServerFixture>
{
    private static readonly string Dir = FindDir();

    private static string FindDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "e2e/interop/streaming"))) return Path.Combine(d.FullName, "e2e/interop/streaming");
        return Environment.GetEnvironmentVariable("HULL_STREAMING_INTEROP_DIR") ?? "e2e/interop/streaming";
    }

    private static async Task<JsonObject> Run(object spec)
    {
        Assert.True(Directory.Exists(Path.Combine(Dir, "node_modules", "spdy-transport")),
            $"npm packages missing: run `npm ci` in {Dir} (hack/install-deps.sh does)");
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Dir };
        psi.ArgumentList.Add("client.js");
        psi.ArgumentList.Add(JsonSerializer.Serialize(spec));
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        var line = (await stdout).Trim();
        Assert.True(line.Length > 0, "node client printed nothing; stderr: " + await stderr);
        return JsonNode.Parse(line)!.AsObject();
    }

    private string Exec(string cmd, bool stdin = false, bool tty = false) => f.Server.GetUrl(new ExecRequest("c1", cmd.Split(' '), tty, stdin, true, !tty)).ToString();

    [Fact]
    public async Task Spdy_exec_echo()
    {
        var r = await Run(new { proto = "spdy", kind = "exec", url = Exec("echo from node"), protocols = new[] { "v4.channel.k8s.io" }, stderr = true });
        Assert.Equal("v4.channel.k8s.io", (string?)r["protocol"]);
        Assert.Equal("from node\n", (string?)r["stdout"]);
        Assert.Equal(0, (int?)r["exitCode"]);
    }

    [Fact]
    public async Task Spdy_exec_cat_stdin_and_exit_code()
    {
        var r = await Run(new { proto = "spdy", kind = "exec", url = Exec("cat", stdin: true), protocols = new[] { "v4.channel.k8s.io" }, stdin = "z", stdinRepeat = 200_000, stderr = true });
        Assert.Equal(200_000, ((string?)r["stdout"])?.Length);
        var r2 = await Run(new { proto = "spdy", kind = "exec", url = Exec("exit 5"), protocols = new[] { "v4.channel.k8s.io" }, stderr = true });
        Assert.Equal(5, (int?)r2["exitCode"]);
    }

    [Fact]
    public async Task Spdy_exec_tty_resize()
    {
        var r = await Run(new { proto = "spdy", kind = "exec", url = Exec("resize 2", stdin: true, tty: true), protocols = new[] { "v4.channel.k8s.io" }, stdin = "", tty = true, keepStdinOpen = true,
            resize = new[] { new { Width = 100, Height = 30 }, new { Width = 200, Height = 50 } } });
        Assert.Equal("100x30\n200x50\n", (string?)r["stdout"]);
    }

    [Fact]
    public async Task Spdy_port_forward()
    {
        using var pong = new PongServer();
        var r = await Run(new { proto = "spdy", kind = "portforward", url = f.Server.GetUrl(new PortForwardRequest("pod1", [pong.Port])).ToString(), protocols = new[] { "portforward.k8s.io" }, port = pong.Port, payload = "hello" });
        Assert.Equal("pong:hello", (string?)r["data"]);
        Assert.Equal("", (string?)r["error"]);
    }

    [Fact]
    public async Task Spdy_unoffered_protocol_and_reused_token()
    {
        var url = Exec("echo");
        var r = await Run(new { proto = "spdy", kind = "exec", url, protocols = new[] { "v99.channel.k8s.io" } });
        Assert.Equal(403, (int?)r["status"]);
        Assert.Contains("v4.channel.k8s.io", (string?)r["headers"]!["x-accepted-stream-protocol-versions"]);
        var r2 = await Run(new { proto = "spdy", kind = "exec", url, protocols = new[] { "v4.channel.k8s.io" } });
        Assert.Equal(404, (int?)r2["status"]);
    }

    [Fact]
    public async Task Spdy_disconnect_cancels_the_session()
    {
        var (runtime, server) = await StreamingServerTests.OwnServerAsync(new StreamingServerOptions());
        await using var started = server;
        var url = server.GetUrl(new ExecRequest("c1", ["sleep"], false, true, true, false)).ToString();
        var r = await Run(new { proto = "spdy", kind = "exec", url, protocols = new[] { "v4.channel.k8s.io" }, stdin = "", keepStdinOpen = true, disconnectAfterMs = 500 });
        Assert.True((bool?)r["disconnected"]);
        await runtime.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData("v5.channel.k8s.io")]
    [InlineData("v4.channel.k8s.io")]
    [InlineData("v4.base64.channel.k8s.io")]
    [InlineData("channel.k8s.io")]
    public async Task Ws_exec_echo_and_exit(string protocol)
    {
        var r = await Run(new { proto = "ws", kind = "exec", url = Exec("echo ws node"), protocols = new[] { protocol } });
        Assert.Equal(protocol, (string?)r["protocol"]);
        Assert.Equal("ws node\n", (string?)r["stdout"]);
        var r2 = await Run(new { proto = "ws", kind = "exec", url = Exec("exit 9"), protocols = new[] { protocol } });
        if (StreamProtocols.StatusIsJson(protocol)) Assert.Equal(9, (int?)r2["exitCode"]);
        else Assert.Contains("non-zero exit code", (string?)r2["error"]);
    }

    [Fact]
    public async Task Ws_v5_cat_with_stdin_close()
    {
        var r = await Run(new { proto = "ws", kind = "exec", url = Exec("cat", stdin: true), protocols = new[] { "v5.channel.k8s.io" }, stdin = "typed" });
        Assert.Equal(("typed", 0), ((string?)r["stdout"], (int?)r["exitCode"]));
    }

    [Fact]
    public async Task Ws_tty_resize()
    {
        var r = await Run(new { proto = "ws", kind = "exec", url = Exec("resize 1", tty: true), protocols = new[] { "v4.channel.k8s.io" }, tty = true, resize = new[] { new { Width = 33, Height = 11 } } });
        Assert.Equal("33x11\n", (string?)r["stdout"]);
    }

    [Fact]
    public async Task Ws_port_forward()
    {
        using var pong = new PongServer();
        var url = f.Server.GetUrl(new PortForwardRequest("pod1", [pong.Port])) + $"?port={pong.Port}";
        var r = await Run(new { proto = "ws", kind = "portforward", url, protocols = new[] { "v4.channel.k8s.io" }, payload = "hey" });
        Assert.Equal((pong.Port, pong.Port), ((int?)r["port0"], (int?)r["port1"]));
        Assert.Equal("pong:hey", (string?)r["data"]);
    }

    [Fact]
    public async Task Ws_port_forward_two_ports_on_channel_pairs()
    {
        using var a = new PongServer();
        using var b = new PongServer();
        var url = f.Server.GetUrl(new PortForwardRequest("pod1", [a.Port, b.Port])) + $"?port={a.Port}&port={b.Port}";
        var r = await Run(new { proto = "ws", kind = "portforward", url, protocols = new[] { "v4.channel.k8s.io" }, payload = "two", portCount = 2 });
        Assert.Equal((a.Port, a.Port, b.Port, b.Port), ((int?)r["port0"], (int?)r["port1"], (int?)r["port2"], (int?)r["port3"]));
        Assert.Equal(("pong:two", "pong:two"), ((string?)r["data"], (string?)r["data1"]));
    }

    [Fact]
    public async Task Ws_spdy_tunnel_port_forward()
    {
        using var pong = new PongServer();
        var r = await Run(new { proto = "ws-spdy", kind = "portforward", url = f.Server.GetUrl(new PortForwardRequest("pod1", [])).ToString(), protocols = new[] { "portforward.k8s.io" }, port = pong.Port, payload = "tunnelled" });
        Assert.Equal("SPDY/3.1+portforward.k8s.io", (string?)r["protocol"]);
        Assert.Equal("pong:tunnelled", (string?)r["data"]);
        Assert.Equal("", (string?)r["error"]);
    }

    [Theory]
    [InlineData("spdy")]
    [InlineData("ws-spdy")]
    public async Task Port_forward_resets_a_client_still_writing_after_the_pod_side_closed(string proto)
    {
        using var closer = TestTcpServer.AnswerAndClose(5, "bye");
        var r = await Run(new { proto, kind = "portforward", url = f.Server.GetUrl(new PortForwardRequest("pod1", [])).ToString(), protocols = new[] { "portforward.k8s.io" },
            port = closer.Port, payload = "hello", writeAfterEnd = 1 << 20 });
        Assert.Equal("bye", (string?)r["data"]);
        Assert.True((bool?)r["reset"], "the client's stream was not reset: " + r.ToJsonString());
    }

    [Fact]
    public async Task Ws_unoffered_protocol_is_403()
    {
        var r = await Run(new { proto = "ws", kind = "exec", url = Exec("echo"), protocols = new[] { "v99.channel.k8s.io" } });
        Assert.Equal(403, (int?)r["status"]);
    }
}
