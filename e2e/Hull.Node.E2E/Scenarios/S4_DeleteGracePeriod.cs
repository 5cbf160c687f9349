using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Hull.Api.Cri;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 4: <c>kubectl delete pod</c> stops the pod within its grace period: the container that handles SIGTERM exits
    /// with 0 at once, the one that ignores it is killed (137) when the grace period ends, not before. Then nothing of the pod
    /// remains on the node: no sandbox or container in CRI, no process in its cgroups, no cgroup, no mount, no IP
    /// allocation, no log directory.
    /// </summary>
    [KubeFact]
    public async Task S4_delete_pod_stops_it_within_its_grace_period_and_leaves_nothing_on_the_node()
    {
        const int grace = 6;
        await using var ns = await NamespaceAsync("delete");
        await Cluster.ApplyAsync($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: graceful, namespace: {{ns}}}
            spec:
              terminationGracePeriodSeconds: {{grace}}
              volumes:
              - name: scratch
                emptyDir: {}
              containers:
              - name: polite
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "echo got TERM; exit 0" TERM; while true; do sleep 0.2; done']
                volumeMounts: [{name: scratch, mountPath: /scratch}]
              - name: stubborn
                image: {{Busybox}}
                imagePullPolicy: IfNotPresent
                command: [sh, -c, 'trap "" TERM; while true; do sleep 0.2; done']
            """);
        var pod = await Pods.WaitAsync(Cluster, ns.Name, "graceful", Pods.IsReady, PodStart, "Ready");
        var uid = Pods.Uid(pod);
        var podIp = (string)pod["status"]!["podIP"]!;
        var sandboxes = await Node.Runtime.Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest
        {
            Filter = new PodSandboxFilter { LabelSelector = { ["io.kubernetes.pod.uid"] = uid } },
        });
        var sandbox = Assert.Single(sandboxes.Items).Id;

        int logStart = Node.KubeletLog.Length;
        var clock = Stopwatch.StartNew();
        await Cluster.KubectlOkAsync("delete", "pod", "graceful", "-n", ns.Name, "--wait=true");
        var took = clock.Elapsed;
        Log($"kubectl delete took {took.TotalSeconds:F1} s (grace period {grace} s)");
        Assert.True(took >= TimeSpan.FromSeconds(grace - 1), $"the pod was gone after {took.TotalSeconds:F1} s, before its grace period of {grace} s ended");
        Assert.True(took <= TimeSpan.FromSeconds(grace + 20), $"deleting took {took.TotalSeconds:F1} s for a grace period of {grace} s");

        // How each container ended, from the kubelet's log: when it asked the runtime to stop it (StopContainer with the
        // grace period as timeout) and when its PLEG saw it exit, with which code. The pod's final status cannot tell:
        // the kubelet removes a deleted pod's containers as soon as they exit, before it writes that status.
        var log = Node.KubeletLog[logStart..];
        var polite = ContainerEnd(log, Pods.ContainerId(pod, "polite")!);
        var stubborn = ContainerEnd(log, Pods.ContainerId(pod, "stubborn")!);
        Log($"polite: exit {polite.ExitCode} {polite.After.TotalSeconds:F1} s after the stop; stubborn: exit {stubborn.ExitCode} after {stubborn.After.TotalSeconds:F1} s");
        Assert.Equal(0, polite.ExitCode);
        Assert.True(polite.After < TimeSpan.FromSeconds(3), $"the container that handles SIGTERM took {polite.After.TotalSeconds:F1} s to exit");
        Assert.Equal(137, stubborn.ExitCode);
        Assert.InRange(stubborn.After.TotalSeconds, grace - 0.5, grace + 3);

        // The kubelet removes exited containers at once and the stopped sandbox at its next GC (every minute).
        var left = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(100);
        do
        {
            left = await PodLeftoversAsync(uid, sandbox, podIp, $"{ns}_graceful_{uid}");
            if (left.Count == 0) break;
            await Task.Delay(1000);
        } while (DateTime.UtcNow < deadline);
        Assert.True(left.Count == 0, $"pod {uid} (sandbox {sandbox}) left on the node:\n{string.Join('\n', left)}");
    }

    /// <summary>From the kubelet's log: the exit code of a container and how long after its stop was requested it exited.</summary>
    private static (int ExitCode, TimeSpan After) ContainerEnd(string log, string containerId)
    {
        var id = containerId[(containerId.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var killed = log.Split('\n').FirstOrDefault(l => l.Contains("\"Killing container with a grace period\"") && l.Contains(id))
            ?? throw new InvalidOperationException($"the kubelet never stopped container {id}");
        var finished = log.Split('\n').FirstOrDefault(l => l.Contains("\"Generic (PLEG): container finished\"") && l.Contains(id))
            ?? throw new InvalidOperationException($"the kubelet never saw container {id} finish");
        var code = int.Parse(Regex.Match(finished, @"exitCode=(-?\d+)").Groups[1].Value);
        return (code, KlogTime(finished) - KlogTime(killed));
    }

    /// <summary>The time of day of a klog line ("I1206 16:59:13.463269 ...").</summary>
    private static TimeSpan KlogTime(string line) => TimeSpan.ParseExact(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], @"hh\:mm\:ss\.ffffff", CultureInfo.InvariantCulture);

    /// <summary>What a deleted pod could leave on the node, one message each.</summary>
    private async Task<List<string>> PodLeftoversAsync(string uid, string sandbox, string podIp, string logDir)
    {
        var left = new List<string>();
        var cri = Node.Runtime.Cri;
        var sandboxes = await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest
        {
            Filter = new PodSandboxFilter { LabelSelector = { ["io.kubernetes.pod.uid"] = uid } },
        });
        left.AddRange(sandboxes.Items.Select(s => $"CRI sandbox {s.Id} ({s.State})"));
        var containers = await cri.Runtime.ListContainersAsync(new ListContainersRequest
        {
            Filter = new ContainerFilter { LabelSelector = { ["io.kubernetes.pod.uid"] = uid } },
        });
        left.AddRange(containers.Containers.Select(c => $"CRI container {c.Id} {c.Metadata.Name} ({c.State})"));
        foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(proc, "cgroup")).Contains(uid, StringComparison.Ordinal))
                    left.Add($"process {Path.GetFileName(proc)} in the pod's cgroup: {File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ')}");
            }
            catch (IOException) { }
        }
        left.AddRange(File.ReadAllLines("/proc/self/mountinfo")
            .Where(l => l.Contains(uid, StringComparison.Ordinal) || l.Contains(sandbox, StringComparison.Ordinal)).Select(l => "mount " + l));
        foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
        {
            var kubepods = hierarchy + Node.CgroupRoot + "/kubepods";
            if (!Directory.Exists(kubepods)) continue;
            left.AddRange(Directory.EnumerateDirectories(kubepods, "pod" + uid, SearchOption.AllDirectories).Select(d => "cgroup " + d));
        }
        if (Directory.Exists(Node.IpamDir))
            left.AddRange(Directory.EnumerateFiles(Node.IpamDir, podIp, SearchOption.AllDirectories).Select(f => "IP allocation " + f));
        if (Directory.Exists(Path.Combine("/var/log/pods", logDir))) left.Add("log directory /var/log/pods/" + logDir);
        return left;
    }
}
