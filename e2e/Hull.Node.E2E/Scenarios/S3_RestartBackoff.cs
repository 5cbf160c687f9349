using System.Diagnostics;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 3: a container that exits with code 3 under <c>restartPolicy: OnFailure</c> is restarted with back-off
    /// (the second restart comes at least ~10 s after the first, with a BackOff event), kubectl shows the restarts and the
    /// last state with exit code 3; a container that outgrows its memory limit shows <c>OOMKilled</c> (exit code 137).
    /// </summary>
    [KubeFact]
    public async Task S3_failing_container_restarts_with_backoff_and_exit_code_3_and_oom_kill_shows_OOMKilled()
    {
        await using var ns = await NamespaceAsync("restarts");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: crash, namespace: {{ns}}}
            spec:
              restartPolicy: OnFailure
              containers:
              - name: crash
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'echo "run at $(date +%s)"; exit 3']
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: oom, namespace: {{ns}}}
            spec:
              restartPolicy: Never
              containers:
              - name: oom
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                # tail keeps the whole newline-free stream in memory: it grows until the cgroup's limit kills it.
                command: [tail, /dev/zero]
                resources:
                  limits: {memory: 32Mi, cpu: 500m}
            """);

        var clock = Stopwatch.StartNew();
        var first = await Pods.WaitAsync(Cluster, ns.Name, "crash", p => Pods.RestartCount(p, "crash") >= 1, PodStart, "restarted once");
        var firstAt = clock.Elapsed;
        var second = await Pods.WaitAsync(Cluster, ns.Name, "crash", p => Pods.RestartCount(p, "crash") >= 2, PodStart, "restarted twice");
        var secondAt = clock.Elapsed;
        Log($"restart 1 seen at {firstAt.TotalSeconds:F1} s, restart 2 at {secondAt.TotalSeconds:F1} s");
        // The kubelet restarts at once after the first failure, then waits 10 s, 20 s, ... (its back-off).
        Assert.True(secondAt - firstAt >= TimeSpan.FromSeconds(8), $"no back-off: the second restart came {(secondAt - firstAt).TotalSeconds:F1} s after the first");

        var last = Pods.Container(second, "crash")!["lastState"]!["terminated"]!;
        Assert.Equal(3, (int?)last["exitCode"]);
        Assert.Equal("Error", (string?)last["reason"]);
        Assert.NotEqual(Pods.ContainerId(first, "crash"), Pods.ContainerId(second, "crash"));

        // What a user sees: the restarts in `kubectl get pod`, the exit code in `describe`, the BackOff event.
        var table = await Cluster.KubectlOkAsync("get", "pod", "crash", "-n", ns.Name, "--no-headers");
        var columns = table.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(int.Parse(columns[3]) >= 2, $"RESTARTS column: {table}");
        var backOff = await Pods.WaitForEventAsync(Cluster, ns.Name, "crash", "BackOff", TimeSpan.FromSeconds(60));
        Log("event: " + backOff);
        var describe = await Cluster.KubectlOkAsync("describe", "pod", "crash", "-n", ns.Name);
        Assert.Matches(@"Last State:\s+Terminated\s+Reason:\s+Error\s+Exit Code:\s+3", describe);

        var oom = await Pods.WaitAsync(Cluster, ns.Name, "oom", p => Pods.Container(p, "oom")?["state"]?["terminated"] is not null, PodStart, "terminated");
        var terminated = Pods.Container(oom, "oom")!["state"]!["terminated"]!;
        Log("oom container: " + terminated.ToJsonString());
        Assert.Equal("OOMKilled", (string?)terminated["reason"]);
        Assert.Equal(137, (int?)terminated["exitCode"]);
        Assert.Equal("Failed", Pods.Phase(oom));
    }
}
