using System.Net;
using System.Text.Json.Nodes;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.Node;

/// <summary>Kubelet settings the fixture chooses.</summary>
public sealed record KubeletSettings
{
    public int ImageGcHighThresholdPercent { get; init; } = 85;
    public int ImageGcLowThresholdPercent { get; init; } = 80;
}

/// <summary>
/// A node of <see cref="KubeCluster"/>: the CRI runtime (hulld by default, see <see cref="NodeRuntimes"/>) and a real
/// kubelet on it. Everything it touches is its own and is removed by <see cref="DisposeAsync"/>, which then checks:
/// <list type="bullet">
/// <item>node number N, picked so that no other node on the machine has it: node name <c>hull-node-N</c>, node IP
///   10.93.N.1 on a bridge <c>hkn N</c> with no ports (the kubelet refuses loopback), pod network 10.94.N.0/24 on
///   bridge <c>hkp N</c> (CNI bridge + host-local, no masquerade and no portmap: it adds no iptables rules);</item>
/// <item>a temporary directory with the runtime's root/state/socket, the kubelet's root dir (its pod volume mounts),
///   certificates, kubeconfig, CNI config and IPAM state, and the logs;</item>
/// <item>cgroup root <c>/hullnode N</c> in every hierarchy (the kubelet's <c>cgroupRoot</c>: kubepods and the pods
///   below it), so two nodes on one machine never share <c>/kubepods</c>;</item>
/// <item>the kubelet's port is a free one on the node IP; healthz and the read-only port are off; it makes no
///   iptables chains (<c>makeIPTablesUtilChains: false</c>) and rewrites no kernel settings (its local patch,
///   <c>KUBELET_KERNEL_TUNABLES=warn</c>);</item>
/// <item>pod logs go to the kubelet's fixed <c>/var/log/pods</c>; test namespaces are prefixed <c>hn N-</c> so their
///   log directories can be found and removed.</item>
/// </list>
/// </summary>
public sealed class KubeNode : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);
    private static readonly SemaphoreSlim PickGate = new(1, 1);
    private readonly KubeCluster _cluster;
    private readonly string _nodeKubeconfig;
    private readonly PemPair _serving;
    private DaemonProcess? _kubelet;
    private int _disposed;

    private KubeNode(KubeCluster cluster, int n, string dir)
    {
        _cluster = cluster;
        N = n;
        Dir = dir;
        _nodeKubeconfig = cluster.AddUser(Name, $"system:node:{Name}", "system:nodes").Kubeconfig;
        _serving = cluster.Pki.IssueServing($"kubelet-{Name}", [Name], [IPAddress.Parse(NodeIp)]);
    }

    public int N { get; }
    public string Name => $"hull-node-{N}";
    public string NodeIp => $"10.93.{N}.1";
    public string NodeBridge => $"hkn{N}";
    public string PodBridge => $"hkp{N}";
    public string PodSubnet => $"10.94.{N}.0/24";
    public string PodSubnetPrefix => $"10.94.{N}.";
    public string CgroupRoot => $"/hullnode{N}";
    /// <summary>Prefix of every namespace the tests use on this node (their log directories under /var/log/pods).</summary>
    public string NamespacePrefix => $"hn{N}-";
    public string Dir { get; }
    public string KubeletRootDir => Path.Combine(Dir, "kubelet");
    public string CniConfDir => Path.Combine(Dir, "net.d");
    public string IpamDir => Path.Combine(Dir, "ipam");
    public string KubeletLogPath => Path.Combine(Dir, "kubelet.log");
    public int KubeletPort { get; } = RegistryProcess.FreePort();
    public KubeCluster Cluster => _cluster;
    public INodeRuntime Runtime { get; private set; } = null!;
    public KubeletSettings Settings { get; private set; } = new();
    /// <summary>Image reference → image ID of what was pulled before the kubelet started.</summary>
    public Dictionary<string, string> PrePulledImages { get; } = [];
    /// <summary>When the kubelet (last) started: its image GC runs then and every <see cref="ImageGcPeriod"/> after.</summary>
    public DateTime KubeletStartedAt { get; private set; }

    /// <summary>The kubelet's image GC period (a constant in kubelet.go, not configurable).</summary>
    public static readonly TimeSpan ImageGcPeriod = TimeSpan.FromMinutes(5);

    /// <summary>When the kubelet's next image GC is due (after now).</summary>
    public DateTime NextImageGc => KubeletStartedAt + ImageGcPeriod * (Math.Floor((DateTime.UtcNow - KubeletStartedAt) / ImageGcPeriod) + 1);
    public DaemonProcess Kubelet => _kubelet ?? throw new InvalidOperationException("the kubelet is not running");

    /// <summary>Everything the kubelet logged, over all its restarts.</summary>
    public string KubeletLog
    {
        get
        {
            if (!File.Exists(KubeletLogPath)) return "";
            using var stream = new FileStream(KubeletLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream).ReadToEnd();
        }
    }

    /// <summary>
    /// Starts the runtime, pulls <paramref name="prePull"/> into it through CRI, then starts the kubelet and waits for the
    /// node to be Ready. Images pulled before the kubelet starts are ones it first sees at an "unknown time in the past",
    /// so its image GC may remove them at once; one it sees appear later is safe for <c>imageMinimumGCAge</c>.
    /// </summary>
    public static async Task<KubeNode> StartAsync(KubeCluster cluster, RegistryProcess registry, TestImages images,
        string? runtime = null, KubeletSettings? settings = null, IEnumerable<TestImage>? prePull = null)
    {
        int n = await PickNumberAsync();
        var node = new KubeNode(cluster, n, Directory.CreateTempSubdirectory("hull-node-").FullName) { Settings = settings ?? new() };
        try
        {
            await node.SetUpHostAsync(registry);
            node.Runtime = await NodeRuntimes.StartAsync(runtime ?? NodeRuntimes.Selected, new NodeRuntimeSettings(
                Path.Combine(node.Dir, "runtime"), node.CniConfDir, Path.Combine(node.Dir, "certs.d"), images.Pause.Reference,
                (node.Name, node._nodeKubeconfig)));
            foreach (var image in prePull ?? [])
            {
                var pulled = await node.Runtime.Cri.Image.PullImageAsync(
                    new PullImageRequest { Image = new ImageSpec { Image = image.Reference } }, deadline: CriClient.In(TimeSpan.FromSeconds(120)));
                node.PrePulledImages[image.Reference] = pulled.ImageRef;
            }
            await node.StartKubeletAsync();
            await node.WaitReadyAsync();
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    private static async Task<int> PickNumberAsync()
    {
        await PickGate.WaitAsync();
        try
        {
            for (int tries = 0; tries < 500; tries++)
            {
                int n = Random.Shared.Next(1, 250);
                if (Directory.Exists($"/sys/class/net/hkn{n}") || Directory.Exists($"/sys/class/net/hkp{n}")
                    || Directory.Exists($"/sys/fs/cgroup/memory/hullnode{n}"))
                    continue;
                // Claim it at once: the bridge is the marker other fixtures look for.
                if ((await ProcessRunner.RunAsync("ip", ["link", "add", $"hkn{n}", "type", "bridge"])).ExitCode == 0) return n;
            }
            throw new InvalidOperationException("no free node number (bridges hkn1..hkn249 all exist?)");
        }
        finally
        {
            PickGate.Release();
        }
    }

    private async Task SetUpHostAsync(RegistryProcess registry)
    {
        await Run("ip", "addr", "add", $"{NodeIp}/24", "dev", NodeBridge);
        await Run("ip", "link", "set", NodeBridge, "up");

        Directory.CreateDirectory(CniConfDir);
        await File.WriteAllTextAsync(Path.Combine(CniConfDir, "10-hull-node.conflist"), new JsonObject
        {
            ["cniVersion"] = "0.4.0",
            ["name"] = $"hull-node-{N}",
            ["plugins"] = new JsonArray(new JsonObject
            {
                ["type"] = "bridge",
                ["bridge"] = PodBridge,
                ["isGateway"] = true,
                ["ipMasq"] = false,
                ["hairpinMode"] = true,
                ["ipam"] = new JsonObject
                {
                    ["type"] = "host-local",
                    ["dataDir"] = IpamDir,
                    ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = PodSubnet })),
                    ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
                },
            }),
        }.ToJsonString());

        var hosts = Path.Combine(Dir, "certs.d", registry.Host);
        Directory.CreateDirectory(hosts);
        await File.WriteAllTextAsync(Path.Combine(hosts, "hosts.toml"), $"""
            server = "http://{registry.Host}"
            [host."http://{registry.Host}"]
              capabilities = ["pull", "resolve"]
            """);

        // The kubelet refuses a cgroupRoot that does not exist in every hierarchy.
        foreach (var hierarchy in CgroupHierarchies())
        {
            var dir = hierarchy + CgroupRoot;
            Directory.CreateDirectory(dir);
            if (Path.GetFileName(hierarchy) == "cpuset")
                foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
                    await File.WriteAllTextAsync(Path.Combine(dir, file), (await File.ReadAllTextAsync(Path.Combine(hierarchy, file))).Trim());
        }
    }

    private static IEnumerable<string> CgroupHierarchies() =>
        Directory.EnumerateDirectories("/sys/fs/cgroup").Where(d => File.Exists(Path.Combine(d, "cgroup.procs")));

    private string KubeletConfig => $"""
        apiVersion: kubelet.config.k8s.io/v1beta1
        kind: KubeletConfiguration
        address: {NodeIp}
        port: {KubeletPort}
        readOnlyPort: 0
        healthzPort: 0
        tlsCertFile: {_serving.CertificatePath}
        tlsPrivateKeyFile: {_serving.KeyPath}
        authentication:
          anonymous:
            enabled: false
          webhook:
            enabled: false
          x509:
            clientCAFile: {_cluster.Pki.CaPath}
        authorization:
          mode: AlwaysAllow
        cgroupDriver: cgroupfs
        cgroupRoot: {CgroupRoot}
        cgroupsPerQOS: true
        failSwapOn: false
        makeIPTablesUtilChains: false
        volumePluginDir: {Path.Combine(KubeletRootDir, "volume-plugins")}
        serializeImagePulls: false
        kubeAPIQPS: 50
        kubeAPIBurst: 100
        imageGCHighThresholdPercent: {Settings.ImageGcHighThresholdPercent}
        imageGCLowThresholdPercent: {Settings.ImageGcLowThresholdPercent}
        evictionHard:
          memory.available: 100Mi
          nodefs.available: 1%
          imagefs.available: 1%
          nodefs.inodesFree: 1%
        evictionPressureTransitionPeriod: 30s
        """;

    private async Task StartKubeletAsync()
    {
        Directory.CreateDirectory(KubeletRootDir);
        var configPath = Path.Combine(Dir, "kubelet-config.yaml");
        await File.WriteAllTextAsync(configPath, KubeletConfig);
        KubeletStartedAt = DateTime.UtcNow;
        _kubelet = DaemonProcess.Start("kubelet", KubeTools.Kubelet, [
            $"--config={configPath}", $"--kubeconfig={_nodeKubeconfig}",
            $"--container-runtime-endpoint=unix://{Runtime.Socket}",
            $"--root-dir={KubeletRootDir}", $"--cert-dir={Path.Combine(Dir, "kubelet-pki")}",
            $"--hostname-override={Name}", $"--node-ip={NodeIp}", "--v=2"],
            KubeletLogPath,
            // The local patch: log the kernel settings the kubelet would rewrite instead of rewriting them.
            new Dictionary<string, string> { ["KUBELET_KERNEL_TUNABLES"] = "warn" });
    }

    /// <summary>Waits until the Node object reports Ready (and the kubelet has not exited).</summary>
    public Task WaitReadyAsync() => Kubelet.WaitUntilAsync(async () => IsReady(await _cluster.Api.GetAsync($"api/v1/nodes/{Name}")),
        ReadyTimeout, $"node {Name} Ready");

    public static bool IsReady(JsonNode? node) =>
        node?["status"]?["conditions"]?.AsArray().Any(c => (string?)c?["type"] == "Ready" && (string?)c?["status"] == "True") == true;

    /// <summary>Creates namespace <see cref="NamespacePrefix"/>+<paramref name="suffix"/> and waits for its default service account.</summary>
    public async Task<string> CreateNamespaceAsync(string suffix)
    {
        var name = NamespacePrefix + suffix;
        await _cluster.KubectlOkAsync("create", "namespace", name);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await _cluster.Api.GetAsync($"api/v1/namespaces/{name}/serviceaccounts/default") is null)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"namespace {name} got no default service account");
            await Task.Delay(200);
        }
        return name;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var errors = new List<Exception>();
        async Task Step(Func<Task> step)
        {
            try { await step(); } catch (Exception e) { errors.Add(e); }
        }
        if (_kubelet is not null) await Step(async () => await _kubelet.DisposeAsync());
        if (Runtime is not null)
        {
            // The kubelet is gone, so nothing recreates them: what it left running is removed through CRI.
            await Step(Runtime.RemoveAllPodsAsync);
            await Step(async () => await Runtime.DisposeAsync());
        }
        await Step(RemoveHostStateAsync);
        var left = await LeftoversAsync();
        if (errors.Count == 0 && left.Count == 0 && Environment.GetEnvironmentVariable("HULL_NODE_KEEP_LOGS") is not { Length: > 0 })
            await Step(() => { Directory.Delete(Dir, recursive: true); return Task.CompletedTask; });
        if (left.Count > 0) errors.Add(new InvalidOperationException($"node {Name} left behind:\n" + string.Join('\n', left)));
        if (errors.Count == 1) throw errors[0];
        if (errors.Count > 1) throw new AggregateException(errors);
    }

    /// <summary>Unmounts what the kubelet mounted, removes cgroups, bridges and the pod log directories.</summary>
    private async Task RemoveHostStateAsync()
    {
        foreach (var mount in MountsUnder(Dir).OrderByDescending(m => m.Length))
        {
            var result = await ProcessRunner.RunAsync("umount", [mount]);
            if (result.ExitCode != 0) await ProcessRunner.RunAsync("umount", ["-l", mount]);
        }
        foreach (var hierarchy in CgroupHierarchies())
            RemoveCgroupTree(hierarchy + CgroupRoot);
        await ProcessRunner.RunAsync("ip", ["link", "del", PodBridge]);
        await ProcessRunner.RunAsync("ip", ["link", "del", NodeBridge]);
        foreach (var dir in PodLogDirs()) Directory.Delete(dir, recursive: true);
        foreach (var link in ContainerLogLinks()) File.Delete(link);
    }

    private static void RemoveCgroupTree(string dir)
    {
        if (!Directory.Exists(dir)) return;
        foreach (var child in Directory.EnumerateDirectories(dir)) RemoveCgroupTree(child);
        try { Directory.Delete(dir); } catch (IOException) { }
    }

    private static List<string> MountsUnder(string dir) =>
        File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m == dir || m.StartsWith(dir + "/", StringComparison.Ordinal)).ToList();

    private IEnumerable<string> PodLogDirs() =>
        Directory.Exists("/var/log/pods") ? Directory.EnumerateDirectories("/var/log/pods", NamespacePrefix + "*") : [];

    private IEnumerable<string> ContainerLogLinks() =>
        Directory.Exists("/var/log/containers") ? Directory.EnumerateFileSystemEntries("/var/log/containers", $"*_{NamespacePrefix}*") : [];

    /// <summary>What this node could leave on the machine, one message each; empty when nothing is left.</summary>
    public async Task<List<string>> LeftoversAsync()
    {
        var left = new List<string>();
        left.AddRange(HulldProcess.ProcessesMentioning(Dir).Select(p => "process " + p));
        left.AddRange(MountsUnder(Dir).Select(m => "mount " + m));
        left.AddRange(File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(CgroupRoot + "/", StringComparison.Ordinal)).Select(l => "mount " + l));
        foreach (var link in new[] { NodeBridge, PodBridge })
            if (Directory.Exists($"/sys/class/net/{link}")) left.Add($"network link {link}");
        foreach (var hierarchy in CgroupHierarchies())
            if (Directory.Exists(hierarchy + CgroupRoot)) left.Add($"cgroup {hierarchy + CgroupRoot}");
        left.AddRange(PodLogDirs().Select(d => "pod log directory " + d));
        left.AddRange(ContainerLogLinks().Select(l => "container log link " + l));
        var iptables = await ProcessRunner.RunAsync("iptables-save", []);
        left.AddRange(iptables.Stdout.Split('\n')
            .Where(l => l.Contains(PodBridge, StringComparison.Ordinal) || l.Contains(NodeBridge, StringComparison.Ordinal)
                || l.Contains(PodSubnetPrefix, StringComparison.Ordinal) || l.Contains($"10.93.{N}.", StringComparison.Ordinal))
            .Select(l => "iptables " + l));
        return left;
    }

    private static async Task Run(string file, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(file, args);
        if (result.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {result}");
    }
}
