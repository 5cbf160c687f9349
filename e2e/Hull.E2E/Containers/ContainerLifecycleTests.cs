using System.Text;
using System.Text.RegularExpressions;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Grpc.Core;

namespace Hull.E2E.Containers;

/// <summary>
/// Containers over the CRI socket as the kubelet drives them: a real pod (namespaces, CNI bridge, cgroup), an image
/// pulled from the local registry, conmon + runc.
/// </summary>
public sealed partial class ContainerLifecycleTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task The_kubelet_sequence_runs_a_container_in_its_pod_and_leaves_nothing_behind()
    {
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        string cgroup = $"{env.CgroupRoot}/pod-c";
        var podConfig = PodTestEnvironment.PodConfig("pod-c", cgroupParent: cgroup);
        podConfig.LogDirectory = Path.Combine(env.Dir, "logs", "pod-c");
        var pod = await env.RunPodAsync(podConfig);
        var netns = await env.NetNsAsync(pod);
        var podIp = (await env.StatusAsync(pod)).Status.Network.Ip;

        var busybox = pushed.Images.Busybox;
        var pulled = await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));

        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "app", Attempt = 0 },
            Image = new ImageSpec { Image = busybox.Reference },
            Command = { "/bin/sh", "-c", "echo hello-out; echo hello-err >&2; trap 'exit 0' TERM; while true; do sleep 0.1; done" },
            Envs = { new KeyValue { Key = "GREETING", Value = "hi" } },
            WorkingDir = "/tmp",
            LogPath = "app/0.log",
            Labels = { ["io.kubernetes.container.name"] = "app" },
            Annotations = { ["note"] = "e2e" },
        };
        var created = await env.Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long));
        var id = created.ContainerId;
        var status = await StatusAsync(env, id);
        Assert.Equal(ContainerState.ContainerCreated, status.Status.State);
        Assert.Equal(pulled.ImageRef, status.Status.ImageId);

        await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        status = await StatusAsync(env, id, verbose: true);
        Assert.Equal(ContainerState.ContainerRunning, status.Status.State);
        Assert.True(status.Status.StartedAt > 0);
        Assert.Equal("app", status.Status.Metadata.Name);
        Assert.Equal("e2e", status.Status.Annotations["note"]);
        Assert.Contains("runtimeSpec", status.Info["info"]);

        // Lists read the index; filters by pod, state, label and id prefix.
        var list = await ListAsync(env, new ContainerFilter { PodSandboxId = pod });
        Assert.Equal(id, Assert.Single(list).Id);
        Assert.Single(await ListAsync(env, new ContainerFilter { Id = id[..12], State = new ContainerStateValue { State = ContainerState.ContainerRunning } }));
        Assert.Empty(await ListAsync(env, new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerExited } }));
        Assert.Single(await ListAsync(env, new ContainerFilter { LabelSelector = { ["io.kubernetes.container.name"] = "app" } }));

        // ExecSync: output, exit code, the pod's network namespace, env and working dir.
        var exec = await ExecAsync(env, id, ["/bin/sh", "-c", "echo $GREETING; pwd; ip -4 addr show eth0; echo oops >&2; exit 3"]);
        Assert.Equal(3, exec.ExitCode);
        var stdout = exec.Stdout.ToStringUtf8();
        Assert.StartsWith("hi\n/tmp\n", stdout);
        Assert.Contains(podIp, stdout);
        Assert.Equal("oops\n", exec.Stderr.ToStringUtf8());
        // Timeout: DeadlineExceeded, and the call returns although a background child holds stdout.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var timedOut = await Assert.ThrowsAsync<RpcException>(() => ExecAsync(env, id, ["/bin/sh", "-c", "sleep 30 & sleep 30"], timeout: 1));
        Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"ExecSync with a 1 s timeout took {sw.Elapsed}");

        // The container shares the pod's network namespace: the same inode as the pinned one.
        var inode = await ExecAsync(env, id, ["/bin/busybox", "stat", "-L", "-c", "%i", "/proc/self/ns/net"]);
        Assert.Equal(new FileInfo(netns).Exists ? InodeOf(netns) : "", inode.Stdout.ToStringUtf8().Trim());

        // Stats.
        var stats = await env.Cri.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id });
        Assert.True(stats.Stats.Memory.WorkingSetBytes.Value > 0);
        Assert.Single((await env.Cri.Runtime.ListContainerStatsAsync(new ListContainerStatsRequest())).Stats);

        // CheckpointContainer is refused clearly.
        var checkpoint = await Assert.ThrowsAsync<RpcException>(() =>
            env.Cri.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = id }).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, checkpoint.StatusCode);
        Assert.Contains("Hull does not checkpoint containers", checkpoint.Message);

        // Stop: SIGTERM is trapped and the shell exits 0.
        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
        status = await StatusAsync(env, id);
        Assert.Equal(ContainerState.ContainerExited, status.Status.State);
        Assert.Equal(0, status.Status.ExitCode);
        Assert.Equal("Completed", status.Status.Reason);
        Assert.True(status.Status.FinishedAt >= status.Status.StartedAt);
        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long)); // idempotent

        // As in containerd, the task goes at the exit (runtime state, cgroup, conmon), before any RemoveContainer; the
        // container keeps its status, and its stats report nothing used but its writable layer.
        var taskLeft = TaskLeftovers(env, id, cgroup);
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(10); taskLeft.Count > 0 && DateTime.UtcNow < until; taskLeft = TaskLeftovers(env, id, cgroup))
            await Task.Delay(50);
        Assert.True(taskLeft.Count == 0, "task left after the exit: " + string.Join("; ", taskLeft));
        Assert.Equal(ContainerState.ContainerExited, (await StatusAsync(env, id)).Status.State);
        var exitedStats = await env.Cri.Runtime.ContainerStatsAsync(new ContainerStatsRequest { ContainerId = id });
        Assert.Equal(0UL, exitedStats.Stats.Memory.WorkingSetBytes.Value);
        Assert.NotNull(exitedStats.Stats.WritableLayer);

        // The CRI log: "<RFC3339Nano> stdout|stderr P|F msg".
        string logPath = Path.Combine(podConfig.LogDirectory, "app", "0.log");
        Assert.Equal(logPath, status.Status.LogPath);
        var lines = File.ReadAllLines(logPath);
        Assert.Contains(lines, l => CriLogLine().IsMatch(l) && l.EndsWith(" stdout F hello-out", StringComparison.Ordinal));
        Assert.Contains(lines, l => CriLogLine().IsMatch(l) && l.EndsWith(" stderr F hello-err", StringComparison.Ordinal));

        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await env.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long)); // idempotent
        var gone = await Assert.ThrowsAsync<RpcException>(() => StatusAsync(env, id));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.Empty(await ListAsync(env, null));
        var left = ContainerLeftovers(env, id, cgroup);
        Assert.True(left.Count == 0, "container left behind: " + string.Join("; ", left));

        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
        var podLeft = await env.LeftoversAsync(pod, netns, cgroup);
        Assert.True(podLeft.Count == 0, "pod left behind: " + string.Join("; ", podLeft));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Containers_survive_a_killed_hulld_and_one_that_exited_meanwhile_reports_its_exit_code()
    {
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        var podConfig = PodTestEnvironment.PodConfig("pod-r", cgroupParent: $"{env.CgroupRoot}/pod-r");
        podConfig.LogDirectory = Path.Combine(env.Dir, "logs", "pod-r");
        var pod = await env.RunPodAsync(podConfig);
        var busybox = pushed.Images.Busybox;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));

        async Task<string> RunAsync(string name, params string[] command)
        {
            var config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = name },
                Image = new ImageSpec { Image = busybox.Reference },
                LogPath = $"{name}/0.log",
            };
            config.Command.AddRange(command);
            var id = (await env.Cri.Runtime.CreateContainerAsync(
                new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
            await env.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
            return id;
        }

        var steady = await RunAsync("steady", "/bin/sh", "-c", "while true; do sleep 0.1; done");
        // Exits with 42 once the file appears, which the test creates while hulld is down.
        var leaving = await RunAsync("leaving", "/bin/sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 42");
        var leavingRootfs = Path.Combine(env.Hulld.State, "containers", leaving, "bundle", "rootfs");

        await env.KillAndRestartAsync(async () =>
        {
            File.WriteAllText(Path.Combine(leavingRootfs, "tmp", "go"), "");
            await Task.Delay(1500); // it exits while hulld is down
        });

        var steadyStatus = await StatusAsync(env, steady);
        Assert.Equal(ContainerState.ContainerRunning, steadyStatus.Status.State);
        var leftStatus = await StatusAsync(env, leaving);
        Assert.Equal(ContainerState.ContainerExited, leftStatus.Status.State);
        Assert.Equal(42, leftStatus.Status.ExitCode);
        Assert.Equal("Error", leftStatus.Status.Reason);
        Assert.True(leftStatus.Status.FinishedAt > leftStatus.Status.StartedAt);
        Assert.Equal(2, (await ListAsync(env, null)).Count);

        // The recovered running container still execs and stops.
        var exec = await ExecAsync(env, steady, ["/bin/echo", "alive"]);
        Assert.Equal("alive\n", exec.Stdout.ToStringUtf8());
        await env.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = steady, Timeout = 2 }, deadline: CriClient.In(Long));
        Assert.Equal(137, (await StatusAsync(env, steady)).Status.ExitCode);
        // Removing the pod removes its containers.
        await env.StopAsync(pod);
        await env.RemoveAsync(pod);
        Assert.Empty(await ListAsync(env, null));
        Assert.Empty(ContainerLeftovers(env, steady, null));
        Assert.Empty(ContainerLeftovers(env, leaving, null));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Unknown_image_and_a_stopped_pod_are_clear_errors_that_leave_nothing()
    {
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        var podConfig = PodTestEnvironment.PodConfig("pod-b");
        var pod = await env.RunPodAsync(podConfig);
        var busybox = pushed.Images.Busybox;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } }, deadline: CriClient.In(Long));
        ContainerConfig Config(string image) => new()
        {
            Metadata = new ContainerMetadata { Name = "bad" },
            Image = new ImageSpec { Image = image },
            Command = { "/bin/true" },
        };

        var unknown = await Assert.ThrowsAsync<RpcException>(() => env.Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = Config("example.invalid/nothing:here"), SandboxConfig = podConfig }, deadline: CriClient.In(Long)).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("example.invalid/nothing:here", unknown.Message);

        await env.StopAsync(pod);
        var stopped = await Assert.ThrowsAsync<RpcException>(() => env.Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = Config(busybox.Reference), SandboxConfig = podConfig }, deadline: CriClient.In(Long)).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, stopped.StatusCode);
        Assert.Contains(pod, stopped.Message);

        Assert.Empty(await ListAsync(env, null));
        var containers = Path.Combine(env.Hulld.State, "containers");
        Assert.True(!Directory.Exists(containers) || !Directory.EnumerateFileSystemEntries(containers).Any(),
            "container state left: " + (Directory.Exists(containers) ? string.Join(", ", Directory.EnumerateFileSystemEntries(containers)) : ""));
        var conmons = ProcessesMentioning("conmon", env.Hulld.State);
        Assert.True(conmons.Count == 0, "conmon left: " + string.Join(", ", conmons));
        await env.RemoveAsync(pod);
    }

    // ---------------------------------------------------------------- helpers

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) [PF] ")]
    private static partial Regex CriLogLine();

    private static Task<ContainerStatusResponse> StatusAsync(PodTestEnvironment env, string id, bool verbose = false) =>
        env.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = verbose }).ResponseAsync;

    private static async Task<IReadOnlyList<Container>> ListAsync(PodTestEnvironment env, ContainerFilter? filter) =>
        (await env.Cri.Runtime.ListContainersAsync(new ListContainersRequest { Filter = filter })).Containers;

    private static Task<ExecSyncResponse> ExecAsync(PodTestEnvironment env, string id, string[] cmd, long timeout = 10)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = timeout };
        request.Cmd.AddRange(cmd);
        return env.Cri.Runtime.ExecSyncAsync(request, deadline: CriClient.In(TimeSpan.FromSeconds(timeout + 30))).ResponseAsync;
    }

    private static string InodeOf(string path)
    {
        var stat = ProcessRunner.RunAsync("/bin/busybox", ["stat", "-L", "-c", "%i", path]).GetAwaiter().GetResult();
        return stat.Stdout.Trim();
    }

    /// <summary>What a removed container could leave: mounts, state, processes, its cgroup.</summary>
    private static List<string> ContainerLeftovers(PodTestEnvironment env, string id, string? cgroupParent)
    {
        var left = new List<string>();
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(id, StringComparison.Ordinal)).ToList();
        if (mounts.Count > 0) left.Add("mounts: " + string.Join(" | ", mounts));
        if (Directory.Exists(Path.Combine(env.Hulld.State, "containers", id))) left.Add("state directory containers/" + id);
        left.AddRange(TaskLeftovers(env, id, cgroupParent));
        return left;
    }

    /// <summary>
    /// What the container's task holds: its files in the state directory (all but the bundle, which is the container's),
    /// its exit file, its processes (conmon, init) and its cgroup.
    /// </summary>
    private static List<string> TaskLeftovers(PodTestEnvironment env, string id, string? cgroupParent)
    {
        var left = new List<string>();
        var state = Path.Combine(env.Hulld.State, "containers", id);
        var files = Directory.Exists(state) ? Directory.EnumerateFileSystemEntries(state).Select(Path.GetFileName).Where(f => f != "bundle").ToList() : [];
        if (files.Count > 0) left.Add($"files in containers/{id}: {string.Join(", ", files)}");
        if (File.Exists(Path.Combine(env.Hulld.State, "exits", id))) left.Add("exit file");
        var processes = ProcessesMentioning(id);
        if (processes.Count > 0) left.Add("processes: " + string.Join(", ", processes));
        if (cgroupParent is not null)
            foreach (var controller in new[] { "memory", "cpu", "pids", "" })
            {
                var dir = $"/sys/fs/cgroup/{controller}{cgroupParent}/{id}".Replace("//", "/");
                if (Directory.Exists(dir)) left.Add("cgroup " + dir);
            }
        return left;
    }

    private static List<string> ProcessesMentioning(params string[] texts)
    {
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (texts.All(t => cmdline.Contains(t, StringComparison.Ordinal))) found.Add($"{pid}: {cmdline.Trim()}");
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}
