using System.Globalization;
using System.Text.RegularExpressions;
using Hull.Api.Cri;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 6: the kubelet's <c>/metrics/resource</c> (built from CRI ListContainerStats; read through the API
    /// server's node proxy) has CPU and memory for each container and for the pod; the CRI calls the eviction manager
    /// and image GC rely on answer with what they need: ImageFsInfo (the image filesystem's mountpoint and usage) and
    /// ContainerStats (CPU, working set, writable layer); and the kubelet logged no failure of either.
    /// </summary>
    [KubeFact]
    public async Task S6_metrics_resource_has_cpu_and_memory_per_container_and_CRI_stats_answer_the_eviction_manager()
    {
        await using var ns = await NamespaceAsync("stats");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: stats, namespace: {{ns}}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: burner
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                # Burns a little CPU and holds ~8 MiB in a tmpfs-free way: a shell variable.
                command: [sh, -c, 'x=$(head -c 8000000 /dev/zero | tr "\0" a); trap "exit 0" TERM; while true; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; sleep 0.5; done']
                resources:
                  limits: {cpu: 200m, memory: 64Mi}
              - name: idle
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
            """);
        var pod = await Pods.WaitAsync(Cluster, ns.Name, "stats", Pods.IsReady, PodStart, "Ready");

        // The pod-level values come from the pod cgroup, sampled by the kubelet's cAdvisor every 10-15 s: wait for them.
        Dictionary<string, double> metrics = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        string[] wanted = [
            $"container_cpu_usage_seconds_total{{container=\"burner\",namespace=\"{ns}\",pod=\"stats\"}}",
            $"container_cpu_usage_seconds_total{{container=\"idle\",namespace=\"{ns}\",pod=\"stats\"}}",
            $"container_memory_working_set_bytes{{container=\"burner\",namespace=\"{ns}\",pod=\"stats\"}}",
            $"container_memory_working_set_bytes{{container=\"idle\",namespace=\"{ns}\",pod=\"stats\"}}",
            $"pod_cpu_usage_seconds_total{{namespace=\"{ns}\",pod=\"stats\"}}",
            $"pod_memory_working_set_bytes{{namespace=\"{ns}\",pod=\"stats\"}}",
        ];
        string text = "";
        while (DateTime.UtcNow < deadline)
        {
            (_, text) = await Cluster.Api.GetTextAsync($"api/v1/nodes/{Node.Name}/proxy/metrics/resource");
            metrics = ParseMetrics(text);
            if (wanted.All(w => metrics.GetValueOrDefault(w) > 0)) break;
            await Task.Delay(2000);
        }
        foreach (var w in wanted) Assert.True(metrics.GetValueOrDefault(w) > 0, $"{w} missing or 0 in /metrics/resource:\n{text}");
        Assert.Equal(0, metrics.GetValueOrDefault("scrape_error"));
        Assert.True(metrics[wanted[2]] > 4_000_000, $"burner holds 8 MB, its working set is {metrics[wanted[2]]}");
        Log(string.Join("\n", wanted.Select(w => $"{w} {metrics[w]}")));

        // ImageFsInfo: where the images are and how much they use (image GC and the imagefs eviction signals).
        var imageFs = await Node.Runtime.Cri.Image.ImageFsInfoAsync(new ImageFsInfoRequest());
        var fs = Assert.Single(imageFs.ImageFilesystems);
        Log($"ImageFsInfo: {fs}");
        Assert.True(Directory.Exists(fs.FsId.Mountpoint), $"image filesystem mountpoint {fs.FsId.Mountpoint} does not exist");
        Assert.True(fs.UsedBytes.Value > 0 && fs.InodesUsed.Value > 0, $"image filesystem usage: {fs}");

        // ContainerStats for each container: CPU, memory working set, writable layer (the pod-level eviction ranking).
        var uid = Pods.Uid(pod);
        var stats = await Node.Runtime.Cri.Runtime.ListContainerStatsAsync(new ListContainerStatsRequest
        {
            Filter = new ContainerStatsFilter { LabelSelector = { ["io.kubernetes.pod.uid"] = uid } },
        });
        Assert.Equal(["burner", "idle"], stats.Stats.Select(s => s.Attributes.Metadata.Name).Order().ToArray());
        foreach (var s in stats.Stats)
        {
            Assert.True(s.Cpu.UsageCoreNanoSeconds.Value > 0, $"{s.Attributes.Metadata.Name}: no CPU usage: {s}");
            Assert.True(s.Memory.WorkingSetBytes.Value > 0, $"{s.Attributes.Metadata.Name}: no working set: {s}");
            Assert.NotNull(s.WritableLayer);
            Assert.False(string.IsNullOrEmpty(s.WritableLayer.FsId?.Mountpoint), $"{s.Attributes.Metadata.Name}: writable layer without a filesystem: {s}");
        }

        // The kubelet never failed to get them (cAdvisor's own errors about the root device are not Hull's).
        var log = Node.KubeletLog;
        Assert.DoesNotContain("ImageFsInfo from image service failed", log);
        Assert.DoesNotContain("ListContainerStats with filter from runtime service failed", log);
        Assert.DoesNotContain("ListPodSandboxStats with filter from runtime service failed", log);
    }

    /// <summary>Prometheus text: "name{labels} value [timestamp]" per line, comments skipped.</summary>
    private static Dictionary<string, double> ParseMetrics(string text)
    {
        var metrics = new Dictionary<string, double>();
        foreach (Match m in MetricLine().Matches(text))
            metrics[m.Groups[1].Value] = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        return metrics;
    }

    [GeneratedRegex(@"^([a-z_]+(?:\{[^}]*\})?) ([-+0-9.eE]+|NaN)(?: \d+)?$", RegexOptions.Multiline)]
    private static partial Regex MetricLine();
}
