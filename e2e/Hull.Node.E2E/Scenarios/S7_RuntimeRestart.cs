using Hull.Api.Cri;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 7: the runtime is killed with SIGKILL while pods run and started again over the same root and state. The
    /// kubelet reconnects and the node is Ready again; the running pods keep running (same container IDs, no restart
    /// counted, still Ready after several PLEG relists); exec into them works; a pod created afterwards runs.
    /// </summary>
    [KubeFact]
    public async Task S7_runtime_killed_and_restarted_keeps_running_pods_and_runs_new_ones()
    {
        await using var ns = await NamespaceAsync("restart");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: survivor, namespace: {{ns}}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: one
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; while true; do echo one; sleep 1; done']
                readinessProbe:
                  exec: {command: ['true']}
                  periodSeconds: 2
              - name: two
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
            """);
        var before = await Pods.WaitAsync(Cluster, ns.Name, "survivor", Pods.IsReady, PodStart, "Ready");
        var ids = new[] { "one", "two" }.ToDictionary(c => c, c => Pods.ContainerId(before, c));
        int runtimePid = Node.Runtime.Pid;
        // Not while the kubelet's image GC runs (S8 waits for one that succeeds).
        if (Node.NextImageGc - DateTime.UtcNow < TimeSpan.FromSeconds(20)) await Task.Delay(Node.NextImageGc - DateTime.UtcNow + TimeSpan.FromSeconds(10));

        await Node.Runtime.KillAndRestartAsync();
        Log($"{Node.Runtime.Name} pid {runtimePid} killed, restarted as pid {Node.Runtime.Pid}");
        var running = await Node.Runtime.Cri.Runtime.ListContainersAsync(new ListContainersRequest
        {
            Filter = new ContainerFilter { LabelSelector = { ["io.kubernetes.pod.uid"] = Pods.Uid(before) } },
        });
        Assert.All(running.Containers, c => Assert.Equal(ContainerState.ContainerRunning, c.State));
        Assert.Equal(2, running.Containers.Count);

        // Several PLEG relists (1 s each) and readiness probes (2 s) after the restart.
        await Node.WaitReadyAsync();
        await Task.Delay(TimeSpan.FromSeconds(12));
        var after = await Cluster.GetAsync($"api/v1/namespaces/{ns}/pods/survivor");
        Assert.True(Pods.IsReady(after), "survivor not Ready after the runtime restart: " + after["status"]!.ToJsonString());
        foreach (var (name, id) in ids)
        {
            Assert.Equal(id, Pods.ContainerId(after, name));
            Assert.Equal(0, Pods.RestartCount(after, name));
            Assert.NotNull(Pods.Container(after, name)!["state"]!["running"]);
        }
        Assert.Equal("still here", (await Cluster.KubectlOkAsync("exec", "-n", ns.Name, "survivor", "-c", "one", "--", "echo", "still here")).Trim());

        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: newcomer, namespace: {{ns}}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: app
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "exit 0" TERM; echo started; while true; do sleep 1; done']
            """);
        await Pods.WaitAsync(Cluster, ns.Name, "newcomer", Pods.IsReady, PodStart, "Ready");
        Assert.Contains("started", await Cluster.KubectlOkAsync("logs", "-n", ns.Name, "newcomer"));
        Assert.DoesNotContain("pleg was last seen active", Node.KubeletLog);
    }
}
