using System.Text;
using Hull.Api.Cri;
using Hull.Streaming.Client;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Protocols = Hull.Streaming.StreamProtocols;

namespace Hull.E2E.Streaming;

/// <summary>
/// CRI Attach over WebSocket (v5 and v4) to a container that prints periodically, and attach with stdin (SPDY and
/// WebSocket) to a container started with stdin=true running <c>cat</c>: what is written comes back.
/// </summary>
public sealed class AttachWebSocketTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    internal static async Task<(PodTestEnvironment Env, string Pod, string Container)> StartAsync(PushedTestImages pushed, string name, bool stdin, params string[] command)
    {
        var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        try
        {
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
                Stdin = stdin,
            };
            var id = (await env.Cri.Runtime.CreateContainerAsync(
                new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
            await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
            return (env, pod, id);
        }
        catch
        {
            await env.DisposeAsync();
            throw;
        }
    }

    private static async Task<string> AttachUrl(PodTestEnvironment env, string id, bool stdin) =>
        (await env.Cri.Runtime.AttachAsync(new AttachRequest { ContainerId = id, Stdin = stdin, Stdout = true, Stderr = true })).Url;

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Attach_over_websocket_follows_output_and_attach_with_stdin_echoes_back_over_spdy_and_websocket()
    {
        // 1. Output of a running container over WebSocket, v5 then v4.
        {
            var (env, pod, id) = await StartAsync(pushed, "attach-ws-out", false, "/bin/sh", "-c",
                "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done");
            await using var _ = env;
            foreach (var protocol in new[] { Protocols.RemoteCommandV5, Protocols.RemoteCommandV4 })
            {
                using var cts = new CancellationTokenSource(Long);
                var ws = await StreamingClient.ConnectWebSocketAsync(new Uri(await AttachUrl(env, id, false)), [protocol], 5, cts.Token);
                Assert.Equal(protocol, ws.Protocol);
                var output = new NotifyingStream();
                var run = StreamingClient.RunWebSocketAsync(ws, new RemoteCommandOptions(false, true, true, false), null, output, Stream.Null, null, cts.Token);
                await output.Seen("tick").WaitAsync(TimeSpan.FromSeconds(20));
                // Two more lines: it follows, not just a replay.
                var first = output.Text;
                await output.Seen("\n", first.Length + 1).WaitAsync(TimeSpan.FromSeconds(20));
                Assert.Matches(@"tick \d+\n", output.Text);
                await cts.CancelAsync();
                try { await run.WaitAsync(Long); } catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.WebSockets.WebSocketException) { }
                await ws.DisposeAsync();
            }
            await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
            await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
            await env.StopAsync(pod);
            await env.RemoveAsync(pod);
        }

        // 2. Attach with stdin to `cat` (stdin=true, not stdin_once): SPDY, then WebSocket v5.
        {
            var (env, pod, id) = await StartAsync(pushed, "attach-stdin", true, "cat");
            await using var _ = env;

            using (var cts = new CancellationTokenSource(Long))
            {
                var conn = await StreamingClient.ConnectSpdyAsync(new Uri(await AttachUrl(env, id, true)), [Protocols.RemoteCommandV4], cts.Token);
                var output = new NotifyingStream();
                var run = StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(true, true, true, false),
                    new ThenBlockingStream("hello-spdy\n"u8.ToArray()), output, Stream.Null, null, cts.Token);
                await output.Seen("hello-spdy\n").WaitAsync(TimeSpan.FromSeconds(20));
                await cts.CancelAsync();
                await conn.DisposeAsync();
                try { await run.WaitAsync(Long); } catch (Exception e) when (e is OperationCanceledException or IOException) { }
            }

            using (var cts = new CancellationTokenSource(Long))
            {
                var ws = await StreamingClient.ConnectWebSocketAsync(new Uri(await AttachUrl(env, id, true)), [Protocols.RemoteCommandV5], 5, cts.Token);
                var output = new NotifyingStream();
                var run = StreamingClient.RunWebSocketAsync(ws, new RemoteCommandOptions(true, true, true, false),
                    new ThenBlockingStream("hello-ws\n"u8.ToArray()), output, Stream.Null, null, cts.Token);
                await output.Seen("hello-ws\n").WaitAsync(TimeSpan.FromSeconds(20));
                Assert.DoesNotContain("hello-spdy", output.Text);
                // The container ends: the attach session ends too.
                await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 2 }, deadline: CriClient.In(Long));
                try { await run.WaitAsync(Long); } catch (Exception e) when (e is IOException or System.Net.WebSockets.WebSocketException or Hull.Streaming.RemoteCommandException) { }
                await ws.DisposeAsync();
            }

            await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
            await env.StopAsync(pod);
            await env.RemoveAsync(pod);
        }
    }
}
