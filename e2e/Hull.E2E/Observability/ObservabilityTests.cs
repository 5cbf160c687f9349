using Grpc.Core;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;

namespace Hull.E2E.Observability;

/// <summary>
/// Metrics, traces and the debug pages of a real hulld running a real pod: the exposition checked by Prometheus'
/// own promtool, spans received by an OTLP/HTTP receiver and decoded with the OTLP protos, the span tree of
/// RunPodSandbox + CreateContainer + StartContainer under the kubelet's trace (W3C traceparent).
/// </summary>
public sealed partial class ObservabilityTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private static readonly ActivitySource Kubelet = new("Hull.E2E.Kubelet");

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci", "promtool")]
    public async Task A_pod_start_is_measured_traced_under_the_kubelets_trace_and_visible_in_the_debug_pages()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        int port = FreePort();
        var environment = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint.ToString(),
            ["OTEL_TRACES_SAMPLER"] = "always_on",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        };
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry, $"[metrics]\n  address = '127.0.0.1:{port}'\n", environment);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(60) };
        var busybox = pushed.Images.Busybox;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));

        // The kubelet's own span; each call gets client spans below it (Grpc.Net.Client's, then HttpClient's, sent as traceparent).
        var clientSpans = new System.Collections.Concurrent.ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == Kubelet.Name || s.Name == "System.Net.Http",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { if (a.Source.Name == "System.Net.Http") clientSpans.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);
        string pod, container, kubeletTrace, kubeletSpan;
        var podConfig = PodTestEnvironment.PodConfig("obs");
        using (var sync = Kubelet.StartActivity("SyncPod")!)
        {
            kubeletTrace = sync.TraceId.ToHexString();
            kubeletSpan = sync.SpanId.ToHexString();
            pod = await env.RunPodAsync(podConfig);
            container = (await env.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = pod,
                SandboxConfig = podConfig,
                Config = new ContainerConfig
                {
                    Metadata = new ContainerMetadata { Name = "app" },
                    Image = new ImageSpec { Image = busybox.Reference },
                    Command = { "/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done" },
                },
            }, deadline: CriClient.In(Long))).ContainerId;
            await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = container }, deadline: CriClient.In(Long));
        }

        // A call in flight shows in /debug/calls with its age, while it runs.
        var exec = env.Cri.Runtime.ExecSyncAsync(new ExecSyncRequest { ContainerId = container, Cmd = { "sleep", "3" }, Timeout = 20 }, deadline: CriClient.In(Long));
        string calls = "";
        for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); !calls.Contains("/runtime.v1.RuntimeService/ExecSync") && DateTime.UtcNow < deadline;)
            calls = await http.GetStringAsync("debug/calls");
        Assert.Matches(@"calls in flight: [1-9]", calls);
        Assert.Matches(@"\d+\.\d{3}s  /runtime\.v1\.RuntimeService/ExecSync  from pid \d+", calls);
        Assert.Matches(@"connections open: [1-9]", calls);
        Assert.Equal(0, (await exec).ExitCode);

        await AssertMetricsAsync(http);
        await AssertDebugPagesAsync(http);
        // Grpc.Net.Client puts its own activity between the kubelet's span and HttpClient's, so walk up the parents.
        static bool Below(Activity a, string spanId)
        {
            for (var p = a.Parent; p is not null; p = p.Parent)
                if (p.SpanId.ToHexString() == spanId) return true;
            return a.ParentSpanId.ToHexString() == spanId;
        }
        var callSpans = clientSpans.Where(a => Below(a, kubeletSpan)).Select(a => a.SpanId.ToHexString()).ToHashSet();
        await AssertSpanTreeAsync(receiver, kubeletTrace, callSpans);

        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
    }

    private static async Task AssertMetricsAsync(HttpClient http)
    {
        using var response = await http.GetAsync("v1/metrics");
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        string text = await response.Content.ReadAsStringAsync();

        // Prometheus' own parser and linter: a format error or a convention broken (names, HELP, _total) fails.
        string file = Path.Combine(Path.GetTempPath(), $"hull-metrics-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, text);
        try
        {
            var promtool = await ProcessRunner.RunAsync("/bin/sh", ["-c", "promtool check metrics < \"$1\"", "sh", file]);
            Assert.True(promtool.ExitCode == 0 && promtool.Stdout.Length + promtool.Stderr.Length == 0,
                $"promtool check metrics: {promtool}\n{text}");
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Equal(1, Value(text, "hull_grpc_server_requests_total", "service=\"runtime.v1.RuntimeService\",method=\"RunPodSandbox\",code=\"OK\""));
        Assert.Equal(1, Value(text, "hull_grpc_server_requests_total", "service=\"runtime.v1.RuntimeService\",method=\"StartContainer\",code=\"OK\""));
        Assert.Equal(1, Value(text, "hull_grpc_server_request_duration_seconds_count", "service=\"runtime.v1.RuntimeService\",method=\"CreateContainer\""));
        Assert.Equal(0, Value(text, "hull_grpc_server_requests_in_flight", "service=\"runtime.v1.RuntimeService\",method=\"ExecSync\""));
        Assert.Equal(1, Value(text, "hull_pods", "state=\"ready\",handler=\"runc\""));
        Assert.Equal(1, Value(text, "hull_containers", "state=\"running\",handler=\"runc\""));
        Assert.Equal(1, Value(text, "hull_pod_start_duration_seconds_count", "handler=\"runc\""));
        Assert.Equal(1, Value(text, "hull_image_pulls_total", "result=\"success\""));
        Assert.True(Value(text, "hull_image_fetched_bytes_total", null) > 0);
        Assert.True(Value(text, "hull_image_content_store_bytes", null) > 0);
        Assert.True(Value(text, "hull_http2_connections", null) >= 1);
        Assert.True(Value(text, "hull_http2_received_bytes_total", null) > 0);
        Assert.True(Value(text, "process_working_set_bytes", null) > 0); // prometheus-net's process collector
        Assert.True(Value(text, "process_open_handles", null) > 0);
        Assert.DoesNotMatch(PodIdLabel(), text); // no unbounded labels: no pod or container IDs anywhere

        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/metrics");
        request.Headers.Accept.ParseAdd("application/openmetrics-text; version=1.0.0");
        using var openMetrics = await http.SendAsync(request);
        Assert.StartsWith("application/openmetrics-text", openMetrics.Content.Headers.ContentType?.ToString());
        Assert.EndsWith("# EOF\n", await openMetrics.Content.ReadAsStringAsync());
    }

    private static async Task AssertDebugPagesAsync(HttpClient http)
    {
        Assert.Contains("/debug/stacks", await http.GetStringAsync("debug/"));
        string runtime = await http.GetStringAsync("debug/runtime");
        Assert.Contains("thread pool", runtime);
        Assert.Matches(@"collections gen0/gen1/gen2\s+\d+/\d+/\d+", runtime);
        string stacks = await http.GetStringAsync("debug/stacks");
        Assert.Matches(@"thread \d+ \(os thread \d+\)", stacks);
        Assert.Contains("at System.Threading.", stacks);
        using var unknown = await http.GetAsync("debug/nothing");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    private static async Task AssertSpanTreeAsync(OtlpReceiver receiver, string kubeletTrace, IReadOnlySet<string> kubeletCalls)
    {
        string[] expected = ["runtime.v1.RuntimeService/RunPodSandbox", "RunPodSandbox", "podsandbox create", "CNI ADD",
            "runtime.v1.RuntimeService/CreateContainer", "CreateContainer", "snapshot prepare", "rootfs mount",
            "runtime.v1.RuntimeService/StartContainer", "StartContainer", "task run", "conmon + runc run"];
        var spans = await receiver.WaitForAsync(s => expected.All(name => s.Any(x => x.Name == name && x.TraceId == kubeletTrace)), TimeSpan.FromSeconds(30));
        Assert.Empty(receiver.Errors);
        var trace = spans.Where(s => s.TraceId == kubeletTrace).ToList();
        var byId = trace.ToDictionary(s => s.SpanId);
        ReceivedSpan One(string name) => Assert.Single(trace, s => s.Name == name);
        bool Under(ReceivedSpan span, ReceivedSpan ancestor)
        {
            for (var s = span; byId.TryGetValue(s.ParentSpanId, out var parent); s = parent)
                if (parent.SpanId == ancestor.SpanId) return true;
            return false;
        }

        foreach (var method in new[] { "RunPodSandbox", "CreateContainer", "StartContainer" })
        {
            var server = One($"runtime.v1.RuntimeService/{method}");
            Assert.Contains(server.ParentSpanId, kubeletCalls); // the kubelet's call, from its traceparent, is the parent
            Assert.Equal(OpenTelemetry.Proto.Trace.V1.Span.Types.SpanKind.Server, server.Span.Kind);
            Assert.Equal("hulld", server.Service);
            Assert.Equal("Hull.Grpc", server.Scope);
            Assert.Equal(method, server.Attribute("rpc.method"));
            var lifecycle = One(method);
            Assert.Equal(server.SpanId, lifecycle.ParentSpanId);
            Assert.Equal("Hull.Pods", lifecycle.Scope);
        }
        var run = One("RunPodSandbox");
        Assert.True(Under(One("podsandbox create"), run));
        Assert.True(Under(One("CNI ADD"), One("podsandbox create")));
        var create = One("CreateContainer");
        Assert.True(Under(One("snapshot prepare"), create));
        Assert.True(Under(One("rootfs mount"), create));
        // The task is made at start, as containerd makes its task there, and started by the same run of the runtime.
        Assert.True(Under(One("conmon + runc run"), One("task run")));
        Assert.True(Under(One("task run"), One("StartContainer")));
        Assert.Equal("Hull.Runtime", One("conmon + runc run").Scope);
        Assert.DoesNotContain(trace, s => s.Name is "conmon + runc create" or "runc start");
        // Each span ends after it starts, and inside its parent.
        foreach (var span in trace.Where(s => byId.ContainsKey(s.ParentSpanId)))
        {
            var parent = byId[span.ParentSpanId];
            Assert.True(span.Span.StartTimeUnixNano >= parent.Span.StartTimeUnixNano && span.Span.EndTimeUnixNano <= parent.Span.EndTimeUnixNano,
                $"span {span.Name} is not inside its parent {parent.Name}");
        }
        // The pull was traced too: resolve, then each layer fetched and unpacked.
        var pull = Assert.Single(spans, s => s.Name == "PullImage");
        Assert.Contains(spans, s => s.Name == "resolve" && s.ParentSpanId == pull.SpanId);
        Assert.Contains(spans, s => s.Name == "layer" && s.ParentSpanId == pull.SpanId);
    }

    /// <summary>The value of one series in the text exposition (labels exactly as written, or none).</summary>
    private static double Value(string exposition, string name, string? labels)
    {
        string series = labels is null ? name : $"{name}{{{labels}}}";
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
                   ?? throw new Xunit.Sdk.XunitException($"no series {series} in:\n{exposition}");
        return double.Parse(line[(series.Length + 1)..].Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    [GeneratedRegex("=\"[0-9a-f]{64}\"")]
    private static partial Regex PodIdLabel();
}
