using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    private const int Replicas = 20;

    /// <summary>
    /// Scenario 5: a Deployment of 20 replicas is scaled up and down twice; every pod reaches Running and Ready and goes
    /// away, the node stays Ready, and the kubelet's PLEG stays healthy throughout (no "PLEG is not healthy: pleg was last
    /// seen active" in its log). The times (apply → all Ready, scale to 0 → all gone, and the same for the second round)
    /// are printed; with HULL_NODE_BENCH_OUT=FILE they are appended to FILE as one JSON line, which
    /// <c>hack/bench-node.sh</c> runs against hulld and containerd to compare them.
    /// </summary>
    [KubeFact]
    public async Task S5_deployment_of_20_replicas_scales_up_and_down_twice_with_PLEG_healthy()
    {
        await using var ns = await NamespaceAsync("deploy");
        int logStart = Node.KubeletLog.Length;
        var notReady = new List<string>();
        var times = new Dictionary<string, double>();

        var clock = Stopwatch.StartNew();
        await Cluster.ApplyAsync($$"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: bench, namespace: {{ns}}}
            spec:
              replicas: {{Replicas}}
              selector:
                matchLabels: {app: bench}
              strategy:
                rollingUpdate: {maxSurge: 100%, maxUnavailable: 100%}
              template:
                metadata:
                  labels: {app: bench}
                spec:
                  terminationGracePeriodSeconds: 10
                  containers:
                  - name: app
                    image: {{Busybox}}
                    imagePullPolicy: IfNotPresent
                    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
                    resources:
                      requests: {cpu: 10m, memory: 8Mi}
            """);
        times["up1"] = await WaitForReplicasAsync(ns.Name, Replicas, clock, notReady);
        Log($"apply → {Replicas} Ready: {times["up1"]:F1} s");

        for (int round = 1; round <= 2; round++)
        {
            if (round == 2)
            {
                clock.Restart();
                await Cluster.KubectlOkAsync("scale", "deployment/bench", "-n", ns.Name, $"--replicas={Replicas}");
                times["up2"] = await WaitForReplicasAsync(ns.Name, Replicas, clock, notReady);
                Log($"scale to {Replicas} → all Ready: {times["up2"]:F1} s");
            }
            clock.Restart();
            await Cluster.KubectlOkAsync("scale", "deployment/bench", "-n", ns.Name, "--replicas=0");
            times[$"down{round}"] = await WaitForReplicasAsync(ns.Name, 0, clock, notReady);
            Log($"scale to 0 → all gone: {times[$"down{round}"]:F1} s");
        }

        var log = Node.KubeletLog[logStart..];
        Assert.DoesNotContain("pleg was last seen active", log);
        Assert.True(notReady.Count == 0, "the node was not Ready at: " + string.Join(", ", notReady));
        if (Environment.GetEnvironmentVariable("HULL_NODE_BENCH_OUT") is { Length: > 0 } output)
        {
            var record = new JsonObject { ["runtime"] = Node.Runtime.Name, ["replicas"] = Replicas, ["at"] = DateTime.UtcNow.ToString("O") };
            foreach (var (k, v) in times) record[k] = Math.Round(v, 2);
            await File.AppendAllTextAsync(output, record.ToJsonString() + "\n");
        }
    }

    /// <summary>
    /// Polls the Deployment's pods until exactly <paramref name="count"/> exist and all of them are Ready (for 0: none is
    /// left); returns the seconds since <paramref name="clock"/> started. Every few seconds the Node's Ready condition is
    /// sampled into <paramref name="notReady"/>.
    /// </summary>
    private async Task<double> WaitForReplicasAsync(string ns, int count, Stopwatch clock, List<string> notReady)
    {
        var deadline = TimeSpan.FromSeconds(240);
        var nextNodeCheck = TimeSpan.Zero;
        string state = "";
        while (clock.Elapsed < deadline)
        {
            var pods = await Cluster.Api.ListAsync($"api/v1/namespaces/{ns}/pods?labelSelector=app%3Dbench");
            int ready = pods.Count(Pods.IsReady);
            state = $"{pods.Count} pods, {ready} Ready, phases {string.Join(",", pods.GroupBy(p => Pods.Phase(p)).Select(g => $"{g.Key}={g.Count()}"))}";
            if (pods.Count == count && ready == count)
            {
                if (count > 0) Assert.All(pods, p => Assert.Equal("Running", Pods.Phase(p)));
                return clock.Elapsed.TotalSeconds;
            }
            if (clock.Elapsed >= nextNodeCheck)
            {
                if (!Hull.Node.E2E.Node.KubeNode.IsReady(await Cluster.GetAsync($"api/v1/nodes/{Node.Name}"))) notReady.Add($"{clock.Elapsed.TotalSeconds:F0} s");
                nextNodeCheck = clock.Elapsed + TimeSpan.FromSeconds(5);
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"deployment bench: not {count} Ready pods within {deadline}: {state}\nkubelet log tail:\n{Node.Kubelet.Tail(30)}");
    }
}
