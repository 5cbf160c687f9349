using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Hull.Api.Cri;
using Hull.Streaming.Client;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Xunit.Abstractions;
using Protocols = Hull.Streaming.StreamProtocols;

namespace Hull.E2E.Streaming;

/// <summary>
/// Exec round trip (<c>echo</c>) and port-forward transfer. In CI: 5 exec round trips over SPDY and WebSocket succeed and a
/// 1 MiB port-forward transfer arrives intact (md5 checked in the pod). With HULL_STREAMING_BENCH=1: 100 round trips per
/// protocol (p50/p99) and a 100 MiB transfer (MiB/s), printed to the test output; see docs/benchmarks.md.
/// </summary>
public sealed class StreamingBenchmark(PushedTestImages pushed, ITestOutputHelper log) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(120);

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task StreamingBenchmark_exec_round_trips_and_port_forward_transfer()
    {
        bool bench = Environment.GetEnvironmentVariable("HULL_STREAMING_BENCH") == "1";
        int rounds = bench ? 100 : 5;
        int mib = bench ? 100 : 1;
        var (env, pod, id) = await AttachWebSocketTests.StartAsync(pushed, "stream-bench", false, "/bin/sh", "-c",
            // nc's stdin is a FIFO that never ends: on EOF of its stdin busybox nc would half-close (or end) the connection early.
            "mkfifo /tmp/in; (sleep 2147483647 > /tmp/in &); " +
            "(while true; do nc -l -p 9000 < /tmp/in | md5sum > /tmp/sum.tmp; mv /tmp/sum.tmp /tmp/sum; done) & " +
            "trap 'exit 0' TERM; while true; do sleep 0.1; done");
        await using var _ = env;

        // Exec round trip: CRI Exec call + upgrade + `echo` + exit status, one fresh session each.
        foreach (var ws in new[] { false, true })
        {
            var times = new List<double>();
            for (int i = 0; i < rounds + 1; i++)
            {
                var sw = Stopwatch.StartNew();
                var (code, output) = await Exec(env, id, ["echo", "rt" + i], ws);
                sw.Stop();
                Assert.Equal((0, $"rt{i}\n"), (code, output));
                if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds); // the first is warm-up
            }
            times.Sort();
            log.WriteLine($"exec echo round trip over {(ws ? "WebSocket v5" : "SPDY v4")}: n={times.Count} p50={Pct(times, 0.50):F2} ms p99={Pct(times, 0.99):F2} ms min={times[0]:F2} max={times[^1]:F2} ms");
        }

        // Port-forward: mib MiB to `nc -l -p 9000 | md5sum` in the pod; timed until the pod has the sum of all bytes.
        var data = new byte[mib * 1024 * 1024];
        new Random(42).NextBytes(data);
        var expected = Convert.ToHexStringLower(MD5.HashData(data));
        var pfUrl = (await env.Cri.Runtime.PortForwardAsync(new PortForwardRequest { PodSandboxId = pod, Port = { 9000 } })).Url;
        await using (var conn = await StreamingClient.ConnectSpdyAsync(new Uri(pfUrl), [Protocols.PortForwardV1]))
        {
            await WaitFor(async () => (await Exec(env, id, ["/bin/sh", "-c", "netstat -ln | grep -c ':9000 '"], false)).Output.Trim() != "0", "nc to listen");
            using var cts = new CancellationTokenSource(Long);
            var sw = Stopwatch.StartNew();
            var (stream, error) = await StreamingClient.OpenSpdyPortForwardAsync(conn, 9000, 0, cts.Token);
            var drain = Task.Run(async () => { try { await stream.CopyToAsync(Stream.Null, cts.Token); } catch (Exception) { } });
            for (int off = 0; off < data.Length; off += 64 * 1024)
                await stream.WriteAsync(data.AsMemory(off, Math.Min(64 * 1024, data.Length - off)), cts.Token);
            await stream.CloseWriteAsync();
            var sentAt = sw.Elapsed;
            string sum = "";
            await WaitFor(async () => (sum = (await Exec(env, id, ["/bin/sh", "-c", "cat /tmp/sum 2>/dev/null"], false)).Output.Trim()).Length > 0, "the pod's md5sum", poll: 20);
            sw.Stop();
            Assert.Equal(expected, sum.Split(' ')[0]);
            log.WriteLine($"port-forward (SPDY) {mib} MiB: written in {sentAt.TotalSeconds:F2} s, received in pod after {sw.Elapsed.TotalSeconds:F2} s = {mib / sw.Elapsed.TotalSeconds:F1} MiB/s (md5 ok)");
            // The error stream stays open while the session does; if it has ended, it must be empty.
            if (error.IsCompleted) Assert.Equal("", await error);
        }

        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
    }

    private static double Pct(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static async Task WaitFor(Func<Task<bool>> condition, string what, int poll = 100)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > Long) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(poll);
        }
    }

    private static async Task<(int Code, string Output)> Exec(PodTestEnvironment env, string id, string[] cmd, bool ws)
    {
        var url = (await env.Cri.Runtime.ExecAsync(new ExecRequest { ContainerId = id, Cmd = { cmd }, Stdout = true, Stderr = true })).Url;
        using var timeout = new CancellationTokenSource(Long);
        var o = new MemoryStream();
        int code;
        if (ws)
        {
            await using var conn = await StreamingClient.ConnectWebSocketAsync(new Uri(url), [Protocols.RemoteCommandV5], 5, timeout.Token);
            code = await StreamingClient.RunWebSocketAsync(conn, new RemoteCommandOptions(false, true, true, false), null, o, Stream.Null, null, timeout.Token);
        }
        else
        {
            await using var conn = await StreamingClient.ConnectSpdyAsync(new Uri(url), [Protocols.RemoteCommandV4], timeout.Token);
            code = await StreamingClient.RunSpdyAsync(conn, new RemoteCommandOptions(false, true, true, false), null, o, Stream.Null, null, timeout.Token);
        }
        return (code, Encoding.UTF8.GetString(o.ToArray()));
    }
}
