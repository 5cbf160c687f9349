using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Xunit.Abstractions;

namespace Hull.E2E.Churn;

/// <summary>
/// Issue 13, item 14: pods and containers created, started, stopped and removed by several workers while a killer
/// SIGKILLs hulld at random moments and starts it again over the same root and state. The workers retry as the kubelet
/// does (after a failure: list what is there, adopt what is good, remove what is not, try again with the same names and
/// attempts). At the end every pod and container the client was told exists is there in the right state, and once
/// everything is removed nothing is left on the node. The seed is printed; HULL_CHURN_SEED=&lt;n&gt; replays its choices.
/// </summary>
public sealed class ChurnTests(PushedTestImages pushed, ITestOutputHelper log) : IClassFixture<PushedTestImages>
{
    private const int Pods = 30;
    private const int Workers = 4;
    private const int MinimumKills = 20;
    /// <summary>Every fifth pod is kept running to the end, to prove that what the client was told exists survives the kills.</summary>
    private static bool Kept(int pod) => pod % 5 == 4;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(6);

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Pods_and_containers_survive_random_kill_9s_of_hulld_and_nothing_leaks()
    {
        int seed = Environment.GetEnvironmentVariable("HULL_CHURN_SEED") is { Length: > 0 } given
            ? int.Parse(given, CultureInfo.InvariantCulture) : Random.Shared.Next();
        log.WriteLine($"churn seed {seed} (replay with HULL_CHURN_SEED={seed})");
        var clock = Stopwatch.StartNew();
        using var budget = new CancellationTokenSource(Budget);
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry);
        var run = new ChurnRun(env, pushed.Images.Busybox.Reference, budget.Token);
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = run.Image } }, deadline: CriClient.In(CallTimeout));
        // One pod through the whole cycle first, so the images and snapshots every pod shares are in place for the baseline.
        await run.RemovePodAsync(await run.EnsurePodAsync(-1), -1);
        var snapshotsBefore = SnapshotDirectories(env);

        var kept = new ConcurrentDictionary<int, (string Pod, string Container)>();
        var next = -1;
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var random = new Random(seed + 1 + w);
            for (int i; (i = Interlocked.Increment(ref next)) < Pods;)
            {
                var pod = await run.EnsurePodAsync(i);
                await Task.Delay(random.Next(0, 300), budget.Token);
                var container = await run.EnsureRunningContainerAsync(pod, i);
                await Task.Delay(random.Next(0, 300), budget.Token);
                if (Kept(i)) kept[i] = (pod, container);
                else await run.RemovePodAsync(pod, i);
            }
        })).ToList();
        var all = Task.WhenAll(workers);
        var killer = new Random(seed);
        int kills = 0;
        while (!all.IsCompleted || kills < MinimumKills)
        {
            await Task.WhenAny(all, Task.Delay(killer.Next(300, 2500), budget.Token));
            if (all.IsFaulted) break;
            await env.KillAndRestartAsync();
            kills++;
        }
        await all;
        var churned = clock.Elapsed;
        log.WriteLine($"{Pods} pods with {Workers} workers, {kills} kills of hulld, {run.Retries} retried calls in {churned:mm\\:ss}");

        // What the client was told exists is there, in the right state; what it removed is gone.
        var pods = (await env.ListAsync()).Items;
        var containers = (await env.Cri.Runtime.ListContainersAsync(new ListContainersRequest(), deadline: CriClient.In(CallTimeout))).Containers;
        var wrong = new List<string>();
        foreach (var (i, (pod, container)) in kept.OrderBy(k => k.Key))
        {
            if (pods.SingleOrDefault(p => p.Id == pod) is not { } listed) wrong.Add($"pod {i} ({pod}) is not listed");
            else if (listed.State != PodSandboxState.SandboxReady) wrong.Add($"pod {i} ({pod}) is {listed.State}");
            if (containers.SingleOrDefault(c => c.Id == container) is not { } c) wrong.Add($"container of pod {i} ({container}) is not listed");
            else if (c.State != ContainerState.ContainerRunning) wrong.Add($"container of pod {i} ({container}) is {c.State}");
        }
        foreach (var p in pods.Where(p => kept.Values.All(k => k.Pod != p.Id))) wrong.Add($"pod {p.Id} ({p.Metadata.Name}) is listed but was removed or never reported");
        foreach (var c in containers.Where(c => kept.Values.All(k => k.Container != c.Id))) wrong.Add($"container {c.Id} of pod {c.PodSandboxId} is listed but was removed or never reported");
        Assert.True(wrong.Count == 0, $"seed {seed}: after {kills} kills:\n{string.Join('\n', wrong)}\nhulld log (last run):\n{env.Hulld.LogTail()}");
        Assert.Equal(Pods / 5, kept.Count);

        foreach (var (i, (pod, _)) in kept) await run.RemovePodAsync(pod, i);
        var leaks = await LeaksAsync(env, snapshotsBefore, run.Marker);
        Assert.True(leaks.Count == 0, $"seed {seed}: after {kills} kills and removing everything, left behind:\n{string.Join('\n', leaks)}\nhulld log (last run):\n{env.Hulld.LogTail()}");
        log.WriteLine($"churn test took {clock.Elapsed:mm\\:ss}");
    }

    /// <summary>Everything a pod or container could leave on the node, under this test's directories, bridge and cgroup parent.</summary>
    private static async Task<List<string>> LeaksAsync(PodTestEnvironment env, HashSet<string> snapshotsBefore, string marker)
    {
        var leaks = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        // Snapshot removal and cgroup teardown may finish just after the call returns: look again for a while.
        while (true)
        {
            leaks.Clear();
            var sharedNs = Path.Combine(env.Hulld.State, "ns");
            foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
            {
                var mountPoint = line.Split(' ')[4];
                if (mountPoint.StartsWith(env.Dir, StringComparison.Ordinal) && mountPoint != sharedNs) leaks.Add("mount " + mountPoint);
            }
            // <state>/ns/<type>/<id>: one pin file per pod and namespace type.
            foreach (var pin in Directory.Exists(sharedNs) ? Directory.EnumerateFiles(sharedNs, "*", SearchOption.AllDirectories).ToList() : [])
                leaks.Add("namespace pin " + pin);
            foreach (var file in Entries(Path.Combine(env.IpamDir, env.Bridge)).Where(f => Path.GetFileName(f) is not "lock" && !Path.GetFileName(f).StartsWith("last_reserved_ip", StringComparison.Ordinal)))
                leaks.Add("CNI IP allocation " + file);
            foreach (var dir in new[] { "containers", "runc", "sandboxes", "exits", "attach", "exec" })
                foreach (var entry in Entries(Path.Combine(env.Hulld.State, dir)))
                    leaks.Add("state entry " + entry + (Directory.Exists(entry)
                        ? " holding " + string.Join(", ", Directory.EnumerateFileSystemEntries(entry, "*", SearchOption.AllDirectories).Select(e => Path.GetRelativePath(entry, e)))
                        : ""));
            foreach (var process in HulldProcess.ProcessesMentioning(env.Dir).Concat(HulldProcess.ProcessesMentioning(marker))
                         .Where(p => !p.StartsWith($"{env.Hulld.Pid}:", StringComparison.Ordinal)))
                leaks.Add("process " + process);
            foreach (var snapshot in SnapshotDirectories(env).Except(snapshotsBefore)) leaks.Add("snapshot " + snapshot);
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
                foreach (var cgroup in CgroupsBelow(hierarchy + env.CgroupRoot)) leaks.Add("cgroup " + cgroup);
            if (leaks.Count == 0 || DateTime.UtcNow > deadline) return leaks;
            await Task.Delay(500);
        }
    }

    private static IEnumerable<string> Entries(string dir) => Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir).ToList() : [];

    private static IEnumerable<string> CgroupsBelow(string dir) =>
        Directory.Exists(dir) ? Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).ToList() : [];

    /// <summary>root/snapshots/&lt;snapshotter&gt;/&lt;id&gt;: one directory per snapshot, whatever its kind.</summary>
    private static HashSet<string> SnapshotDirectories(PodTestEnvironment env)
    {
        var root = Path.Combine(env.Hulld.Root, "snapshots");
        return Directory.Exists(root)
            ? Directory.EnumerateDirectories(root).SelectMany(Directory.EnumerateDirectories).ToHashSet(StringComparer.Ordinal)
            : [];
    }

    /// <summary>The kubelet's side: each step retried, after a failure, from what the runtime lists.</summary>
    private sealed class ChurnRun(PodTestEnvironment env, string image, CancellationToken budget)
    {
        private int _retries;
        public string Image => image;
        public int Retries => _retries;
        /// <summary>In every container's command line, so a container process left behind is found.</summary>
        public string Marker { get; } = $"hull-churn-{env.N}";

        private static string Name(int i) => $"churn-{i}";

        private PodSandboxConfig PodConfig(int i)
        {
            var config = PodTestEnvironment.PodConfig(Name(i), uid: $"churn-uid-{i}", cgroupParent: $"{env.CgroupRoot}/{Name(i)}");
            config.LogDirectory = Path.Combine(env.Dir, "logs", Name(i));
            return config;
        }

        /// <summary>A ready pod named churn-i: one that is listed ready, or a new one (not-ready leftovers removed first).</summary>
        public Task<string> EnsurePodAsync(int i) => RetryAsync($"run pod {i}", async cri =>
        {
            var listed = (await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest
            {
                Filter = new PodSandboxFilter { LabelSelector = { ["app"] = Name(i) } },
            }, deadline: CriClient.In(CallTimeout))).Items;
            if (listed.FirstOrDefault(p => p.State == PodSandboxState.SandboxReady) is { } ready) return ready.Id;
            foreach (var stale in listed) await StopAndRemovePodAsync(cri, stale.Id);
            return (await cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = PodConfig(i) }, deadline: CriClient.In(CallTimeout))).PodSandboxId;
        });

        /// <summary>The pod's container running: adopted when listed created or running, else (re)created, then started.</summary>
        public Task<string> EnsureRunningContainerAsync(string pod, int i) => RetryAsync($"run the container of pod {i}", async cri =>
        {
            var listed = (await cri.Runtime.ListContainersAsync(new ListContainersRequest
            {
                Filter = new ContainerFilter { PodSandboxId = pod },
            }, deadline: CriClient.In(CallTimeout))).Containers;
            string? id = null;
            foreach (var c in listed)
            {
                if (c.State is ContainerState.ContainerRunning) return c.Id;
                if (c.State is ContainerState.ContainerCreated) id = c.Id;
                else await cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = c.Id }, deadline: CriClient.In(CallTimeout));
            }
            id ??= (await cri.Runtime.CreateContainerAsync(new CreateContainerRequest
            {
                PodSandboxId = pod,
                SandboxConfig = PodConfig(i),
                Config = new ContainerConfig
                {
                    Metadata = new ContainerMetadata { Name = "app", Attempt = 0 },
                    Image = new ImageSpec { Image = image },
                    Command = { "/bin/sh", "-c", $"trap 'exit 0' TERM; while true; do sleep 0.2; done # {Marker}" },
                    LogPath = "app/0.log",
                },
            }, deadline: CriClient.In(CallTimeout))).ContainerId;
            await cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(CallTimeout));
            return id;
        });

        public Task RemovePodAsync(string pod, int i) => RetryAsync($"remove pod {i}", async cri =>
        {
            await StopAndRemovePodAsync(cri, pod);
            return pod;
        });

        /// <summary>Stop and remove; a pod already gone (a retry after the first try went through) is fine.</summary>
        private static async Task StopAndRemovePodAsync(CriClient cri, string pod)
        {
            try
            {
                await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod }, deadline: CriClient.In(CallTimeout));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { }
            await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod }, deadline: CriClient.In(CallTimeout));
        }

        /// <summary>
        /// Runs <paramref name="step"/> until it succeeds. Any failure is retried: hulld killed under the call, the call
        /// racing a restart, or a name still held by what the last try left (the step lists and reconciles first).
        /// </summary>
        private async Task<T> RetryAsync<T>(string what, Func<CriClient, Task<T>> step)
        {
            Exception? last = null;
            while (true)
            {
                if (budget.IsCancellationRequested)
                    throw new TimeoutException($"{what} did not succeed within the test's budget; last error: {last}");
                try
                {
                    return await step(env.Cri);
                }
                catch (Exception e) when (e is RpcException or ObjectDisposedException or InvalidOperationException or HttpRequestException or IOException)
                {
                    last = e;
                    Interlocked.Increment(ref _retries);
                }
                await Task.Delay(200, CancellationToken.None);
            }
        }
    }
}
