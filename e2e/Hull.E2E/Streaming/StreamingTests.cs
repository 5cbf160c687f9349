using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Api.Cri;
using Hull.Streaming.Client;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Grpc.Core;
using Protocols = Hull.Streaming.StreamProtocols;
using TerminalSize = Hull.Streaming.TerminalSize;

namespace Hull.E2E.Streaming;

/// <summary>
/// CRI Exec, Attach and PortForward end to end: a real pod and busybox container, URLs from hulld's CRI socket, and
/// Hull's own SPDY and WebSocket clients (plus the npm interop client) against hulld's streaming server.
/// </summary>
public sealed class StreamingTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    private static async Task<(PodTestEnvironment Env, string Pod, string Container)> StartAsync(PushedTestImages pushed, string name, params string[] command)
    {
        var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        var podConfig = PodTestEnvironment.PodConfig(name);
        podConfig.LogDirectory = Path.Combine(env.Dir, "logs", name);
        var pod = await env.RunPodAsync(podConfig);
        var busybox = pushed.Images.Busybox;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "app" },
            Image = new ImageSpec { Image = busybox.Reference },
            Command = { command },
            LogPath = "app/0.log",
        };
        var id = (await env.Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        return (env, pod, id);
    }

    private static async Task<string> ExecUrl(PodTestEnvironment env, string id, string[] cmd, bool stdin = false, bool tty = false) =>
        (await env.Cri.Runtime.ExecAsync(new ExecRequest { ContainerId = id, Cmd = { cmd }, Stdin = stdin, Stdout = true, Stderr = !tty, Tty = tty })).Url;

    private static async Task<(int Code, string Out, string Err)> SpdyExec(PodTestEnvironment env, string id, string[] cmd, string? stdin = null, bool tty = false,
        IAsyncEnumerable<TerminalSize>? resizes = null)
    {
        var url = await ExecUrl(env, id, cmd, stdin is not null, tty);
        using var timeout = new CancellationTokenSource(Long);
        await using var conn = await StreamingClient.ConnectSpdyAsync(new Uri(url), [Protocols.RemoteCommandV4], timeout.Token);
        Assert.Equal(Protocols.RemoteCommandV4, conn.Protocol);
        var o = new MemoryStream();
        var e = new MemoryStream();
        int code = await StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(stdin is not null, true, !tty, tty),
            stdin is null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin)), o, e, resizes, timeout.Token);
        return (code, Encoding.UTF8.GetString(o.ToArray()), Encoding.UTF8.GetString(e.ToArray()));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Exec_streams_stdio_and_exit_codes_over_spdy_and_websocket_and_leaves_no_process_behind()
    {
        var (env, pod, id) = await StartAsync(pushed, "stream-exec", "/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done");
        await using var _ = env;

        // SPDY: output, stderr, exit code.
        var r = await SpdyExec(env, id, ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 7"]);
        Assert.Equal((7, "hello\n", "oops\n"), r);
        Assert.Equal((0, "plain\n", ""), await SpdyExec(env, id, ["echo", "plain"]));
        // stdin reaches the command and its end closes it.
        var big = new string('z', 300_000);
        var cat = await SpdyExec(env, id, ["cat"], stdin: big);
        Assert.Equal(0, cat.Code);
        Assert.Equal(big.Length, cat.Out.Length);
        // A TTY: the command sees a terminal (and its output has CRLF line ends), resize reaches it.
        var tty = await SpdyExec(env, id, ["/bin/sh", "-c", "tty; sleep 1; stty size"], tty: true,
            resizes: new[] { new TerminalSize(123, 45) }.ToAsyncEnumerable());
        Assert.Equal(0, tty.Code);
        Assert.Contains("/dev/pts/", tty.Out);
        Assert.Contains("\r\n", tty.Out);
        Assert.Contains("45 123", tty.Out);
        // A command that does not exist: an error, not a hang.
        var missing = await Record.ExceptionAsync(() => SpdyExec(env, id, ["/no/such/command"]));
        Assert.True(missing is Hull.Streaming.RemoteCommandException || missing is null, $"unexpected: {missing}");

        // WebSocket: v5 can half-close stdin (its close signal), v4 cannot.
        foreach (var protocol in new[] { Protocols.RemoteCommandV5, Protocols.RemoteCommandV4 })
        {
            bool stdin = protocol == Protocols.RemoteCommandV5;
            var url = await ExecUrl(env, id, ["/bin/sh", "-c", stdin ? "cat; echo done; exit 3" : "echo via-ws; echo done; exit 3"], stdin);
            using var timeout = new CancellationTokenSource(Long);
            await using var ws = await StreamingClient.ConnectWebSocketAsync(new Uri(url), [protocol], 5, timeout.Token);
            var o = new MemoryStream();
            int code = await StreamingClient.RunWebSocketAsync(ws, new RemoteCommandOptions(stdin, true, true, false),
                stdin ? new MemoryStream("via-ws\n"u8.ToArray()) : null, o, new MemoryStream(), null, timeout.Token);
            Assert.Equal(3, code);
            Assert.Equal("via-ws\ndone\n", Encoding.UTF8.GetString(o.ToArray()));
        }

        // Tokens are single-use; unknown ones are 404.
        var once = await ExecUrl(env, id, ["true"]);
        await (await StreamingClient.ConnectSpdyAsync(new Uri(once), [Protocols.RemoteCommandV4])).DisposeAsync();
        var reused = await Assert.ThrowsAsync<StreamingUpgradeException>(() => StreamingClient.ConnectSpdyAsync(new Uri(once), [Protocols.RemoteCommandV4]));
        Assert.Equal(404, reused.StatusCode);
        var unknown = await Assert.ThrowsAsync<StreamingUpgradeException>(() =>
            StreamingClient.ConnectSpdyAsync(new Uri(new Uri(once), "/exec/not-a-token"), [Protocols.RemoteCommandV4]));
        Assert.Equal(404, unknown.StatusCode);

        // Validation in the CRI call.
        var invalid = await Assert.ThrowsAsync<RpcException>(() => env.Cri.Runtime.ExecAsync(
            new ExecRequest { ContainerId = id, Cmd = { "true" }, Tty = true, Stderr = true, Stdout = true }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        invalid = await Assert.ThrowsAsync<RpcException>(() => env.Cri.Runtime.ExecAsync(new ExecRequest { ContainerId = id, Cmd = { "true" } }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);

        // A client that goes away mid-exec: the command (and runc) are gone soon after.
        {
            var url = await ExecUrl(env, id, ["/bin/sh", "-c", "sleep 7777 & sleep 7778"], stdin: true);
            var conn = await StreamingClient.ConnectSpdyAsync(new Uri(url), [Protocols.RemoteCommandV4]);
            using var cts = new CancellationTokenSource();
            var run = StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(true, true, true, false), new ThenBlockingStream([]), Stream.Null, Stream.Null, null, cts.Token);
            await WaitUntil(() => Processes("sleep 7778").Count > 0, "the exec'd command to start");
            await cts.CancelAsync();
            await conn.DisposeAsync();
            try { await run; } catch { }
            await WaitUntil(() => Processes("sleep 777").Count == 0 && Processes("exec --process").Count == 0,
                "the exec'd commands and runc to be gone: " + string.Join("; ", Processes("sleep 777").Concat(Processes("exec --process"))));
        }

        // The npm client (spdy-transport and ws) against a real container.
        var node = await RunNodeClient(new { proto = "spdy", kind = "exec", url = await ExecUrl(env, id, ["/bin/sh", "-c", "echo from-node; exit 4"]),
            protocols = new[] { "v4.channel.k8s.io" }, stderr = true });
        Assert.Equal("from-node\n", (string?)node["stdout"]);
        Assert.Equal(4, (int?)node["exitCode"]);
        node = await RunNodeClient(new { proto = "ws", kind = "exec", url = await ExecUrl(env, id, ["echo", "ws-node"]),
            protocols = new[] { "v5.channel.k8s.io" }, stderr = true });
        Assert.Equal("ws-node\n", (string?)node["stdout"]);
        Assert.Equal(0, (int?)node["exitCode"]);

        // hullctl exec: output and exit code pass through (stdin is no terminal here, so plain pipes).
        var cli = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", env.Hulld.Socket, "exec", id[..12], "--", "/bin/sh", "-c", "echo from-hullctl; echo e >&2; exit 6"]);
        Assert.Equal(6, cli.ExitCode);
        Assert.Equal("from-hullctl\n", cli.Stdout);

        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
        var stopped = await Assert.ThrowsAsync<RpcException>(() => ExecUrl(env, id, ["true"]));
        Assert.Equal(StatusCode.FailedPrecondition, stopped.StatusCode);
        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Attach_follows_the_container_output_and_port_forward_reaches_a_server_in_the_pod()
    {
        var (env, pod, id) = await StartAsync(pushed, "stream-attach", "/bin/sh", "-c",
            "mkdir -p /tmp/www && echo hello-pf > /tmp/www/index.html && (httpd -f -p 127.0.0.1:8080 -h /tmp/www &); " +
            "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done");
        await using var _ = env;

        // Port-forward over SPDY: an HTTP request to busybox httpd inside the pod's network namespace (loopback only).
        var pfUrl = (await env.Cri.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = pod, Port = { 8080 } })).Url;
        await using (var conn = await StreamingClient.ConnectSpdyAsync(new Uri(pfUrl), [Protocols.PortForwardV1]))
        {
            for (int request = 0; request < 2; request++)
            {
                var (data, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, 8080, request);
                await data.WriteAsync("GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray());
                var response = new MemoryStream();
                var copy = data.CopyToAsync(response);
                await copy.WaitAsync(Long);
                Assert.Contains("hello-pf", Encoding.UTF8.GetString(response.ToArray()));
                Assert.Equal("", await error.WaitAsync(Long));
            }
            // A port nobody listens on: the error stream says so.
            var (refusedData, refusedError) = await StreamingClient.OpenSpdyPortForwardAsync(conn, 8081, 9);
            Assert.Contains("8081", await refusedError.WaitAsync(Long));
        }
        // Port-forward over WebSocket.
        {
            var wsUrl = (await env.Cri.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = pod, Port = { 8080 } })).Url;
            await using var ws = await StreamingClient.ConnectWebSocketAsync(new Uri(wsUrl + "?port=8080"), [Protocols.PortForwardV1], 2);
            using var cts = new CancellationTokenSource(Long);
            var loop = ws.RunAsync(cts.Token);
            var data = ws.Channels[0];
            var prefix = new byte[2];
            await data.ReadExactlyAsync(prefix, cts.Token);
            Assert.Equal(8080, prefix[0] | prefix[1] << 8);
            await data.WriteAsync("GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray(), cts.Token);
            var got = new StringBuilder();
            var buffer = new byte[4096];
            while (!got.ToString().Contains("hello-pf"))
            {
                int n = await data.ReadAsync(buffer, cts.Token);
                if (n == 0) break;
                got.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            Assert.Contains("hello-pf", got.ToString());
        }

        // Attach: the periodic output arrives; the session ends when the container exits.
        var attachUrl = (await env.Cri.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdout = true, Stderr = true })).Url;
        await using (var conn = await StreamingClient.ConnectSpdyAsync(new Uri(attachUrl), [Protocols.RemoteCommandV4]))
        {
            var output = new NotifyingStream();
            var run = StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(false, true, true, false), null, output, Stream.Null);
            try
            {
                await output.Seen("tick").WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (TimeoutException)
            {
                var logFile = Path.Combine(env.Dir, "logs", "stream-attach", "app", "0.log");
                Assert.Fail("no output through attach; container log:\n" + (File.Exists(logFile) ? File.ReadAllText(logFile) : "(none)") + "\nhulld log:\n" + string.Join('\n', env.Hulld.Log.Split('\n').TakeLast(40)));
            }
            await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
            Assert.Equal(0, await run.WaitAsync(Long));
            Assert.Matches(@"tick \d+\n", output.Text);
        }

        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
    }

    /// <summary>Command lines of processes on the node that contain <paramref name="text"/>.</summary>
    private static List<string> Processes(string text)
    {
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                if (cmdline.Contains(text, StringComparison.Ordinal)) found.Add($"{Path.GetFileName(dir)}: {cmdline}");
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(20)) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    internal static async Task<JsonObject> RunNodeClient(object spec)
    {
        var dir = Path.Combine(Repo.Root, "e2e", "interop", "streaming");
        Assert.True(Directory.Exists(Path.Combine(dir, "node_modules", "spdy-transport")), $"npm packages missing: run `npm ci` in {dir}");
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        psi.ArgumentList.Add("client.js");
        psi.ArgumentList.Add(JsonSerializer.Serialize(spec));
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var line = (await stdout).Trim();
        Assert.True(line.Length > 0, "node client printed nothing; stderr: " + await stderr);
        return JsonNode.Parse(line)!.AsObject();
    }
}
