using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Pods;

/// <summary>
/// hulld with a bridge network of its own: bridge <c>hulle2e&lt;n&gt;</c>, subnet 10.98.&lt;n&gt;.0/24 (the unit tests use
/// 10.99), host-local allocations in the temp dir, the real plugins from /usr/lib/cni, and a cgroup parent
/// <c>/hulle2e&lt;n&gt;</c>. Dispose removes every pod still there, stops hulld (which asserts nothing of it is left),
/// deletes the bridge and the cgroup parent.
/// </summary>
public sealed class PodTestEnvironment : IAsyncDisposable
{
    public static readonly string[] Tools = ["runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback", "nsenter", "/bin/busybox", "iptables-save", "ip"];

    private static int s_next = Random.Shared.Next(0, 200);

    private PodTestEnvironment(int n, string dir)
    {
        N = n;
        Dir = dir;
    }

    public int N { get; }
    public string Dir { get; }
    public HulldProcess Hulld { get; private set; } = null!;
    public CriClient Cri => Hulld.Cri;
    public string Bridge => $"hulle2e{N}";
    public string SubnetPrefix => $"10.98.{N}.";
    public string Gateway => $"10.98.{N}.1";
    public string ConfDir => Path.Combine(Dir, "net.d");
    public string IpamDir => Path.Combine(Dir, "ipam");
    public string ConfigPath => Path.Combine(ConfDir, "10-e2e.conflist");
    public string CgroupRoot => $"/hulle2e{N}";

    /// <summary>The registry hulld pulls from (hosts.toml under certs.d), when the tests need images.</summary>
    public RegistryProcess? Registry { get; private set; }

    /// <summary>TOML appended to the generated config (e.g. a <c>pinned_images</c> table).</summary>
    public string ExtraToml { get; private set; } = "";

    public string ConfigToml => $"""
        version = 3
        [plugins.'io.containerd.cri.v1.runtime'.cni]
          conf_dir = '{ConfDir}'
          bin_dirs = ['/usr/lib/cni']
        """ + (Registry is null ? "" : $"""

        [plugins.'io.containerd.cri.v1.images'.registry]
          config_path = '{Path.Combine(Dir, "certs.d")}'
        """) + (ExtraToml.Length == 0 ? "" : "\n" + ExtraToml);

    /// <summary>Like <see cref="StartAsync()"/>, with hulld pulling from <paramref name="registry"/> over plain HTTP.</summary>
    public static Task<PodTestEnvironment> StartAsync(RegistryProcess registry) => StartAsync(registry, null);

    public static Task<PodTestEnvironment> StartAsync() => StartAsync(null, null);

    /// <summary>Like <see cref="StartAsync()"/>, with <paramref name="extraToml"/> appended to hulld's config.</summary>
    public static Task<PodTestEnvironment> StartAsync(RegistryProcess? registry, string? extraToml) => StartAsync(registry, extraToml, null);

    /// <summary>Like <see cref="StartAsync(RegistryProcess?, string?)"/>, with <paramref name="environment"/> added to hulld's environment.</summary>
    public static async Task<PodTestEnvironment> StartAsync(RegistryProcess? registry, string? extraToml, IReadOnlyDictionary<string, string>? environment)
    {
        int n = 0;
        for (int tries = 0; tries < 250; tries++)
        {
            n = Interlocked.Increment(ref s_next) % 250 + 1;
            if (!Directory.Exists($"/sys/class/net/hulle2e{n}")) break;
        }
        var env = new PodTestEnvironment(n, Directory.CreateTempSubdirectory("hull-e2e-pods-").FullName) { ExtraToml = extraToml ?? "" };
        // Searchable by all: runc resolves the rootfs of a user-namespaced pod as its mapped (unprivileged) root.
        File.SetUnixFileMode(env.Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        Directory.CreateDirectory(env.ConfDir);
        env.WriteNetwork();
        if (registry is not null)
        {
            env.Registry = registry;
            var hosts = Path.Combine(env.Dir, "certs.d", registry.Host);
            Directory.CreateDirectory(hosts);
            await File.WriteAllTextAsync(Path.Combine(hosts, "hosts.toml"), $"""
                server = "http://{registry.Host}"
                [host."http://{registry.Host}"]
                  capabilities = ["pull", "resolve"]
                """);
        }
        env.Hulld = await HulldProcess.StartInAsync(env.Dir, env.ConfigToml, environment);
        return env;
    }

    /// <summary>The bridge + host-local + portmap list; <paramref name="extraPlugin"/> is appended (to break it).</summary>
    public void WriteNetwork(string? extraPlugin = null)
    {
        var plugins = new JsonArray(
            new JsonObject
            {
                ["type"] = "bridge",
                ["bridge"] = Bridge,
                ["isGateway"] = true,
                ["ipMasq"] = true,
                ["hairpinMode"] = true,
                ["ipam"] = new JsonObject
                {
                    ["type"] = "host-local",
                    ["dataDir"] = IpamDir,
                    ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = $"10.98.{N}.0/24" })),
                    ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
                },
            },
            new JsonObject { ["type"] = "portmap", ["capabilities"] = new JsonObject { ["portMappings"] = true }, ["snat"] = true });
        if (extraPlugin is not null) plugins.Add(new JsonObject { ["type"] = extraPlugin });
        File.WriteAllText(ConfigPath, new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = $"hulle2e{N}", ["plugins"] = plugins }.ToJsonString());
    }

    /// <summary>hulld is killed with SIGKILL and started again over the same root and state.</summary>
    public async Task KillAndRestartAsync(Func<Task>? whileDown = null)
    {
        await Hulld.KillAsync();
        if (whileDown is not null) await whileDown();
        Hulld.Channel.Dispose();
        Hulld = await HulldProcess.StartInAsync(Dir, ConfigToml);
    }

    public static PodSandboxConfig PodConfig(string name, string? uid = null, uint attempt = 0, string? cgroupParent = null)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = "e2e", Uid = uid ?? Guid.NewGuid().ToString(), Attempt = attempt },
            Hostname = name,
            LogDirectory = "/tmp",
            Linux = new LinuxPodSandboxConfig { CgroupParent = cgroupParent ?? "" },
        };
        config.Labels["app"] = name;
        return config;
    }

    public async Task<string> RunPodAsync(PodSandboxConfig config, string handler = "")
    {
        var response = await Cri.Runtime.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = handler }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
        return response.PodSandboxId;
    }

    public Task<PodSandboxStatusResponse> StatusAsync(string id, bool verbose = false) =>
        Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose }).ResponseAsync;

    public Task<ListPodSandboxResponse> ListAsync(PodSandboxFilter? filter = null) =>
        Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest { Filter = filter }).ResponseAsync;

    public Task StopAsync(string id) =>
        Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id }, deadline: CriClient.In(TimeSpan.FromSeconds(60))).ResponseAsync;

    public Task RemoveAsync(string id) =>
        Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id }, deadline: CriClient.In(TimeSpan.FromSeconds(60))).ResponseAsync;

    /// <summary>The pod's pinned network namespace, from the verbose info.</summary>
    public async Task<string> NetNsAsync(string id)
    {
        var status = await StatusAsync(id, verbose: true);
        using var info = JsonDocument.Parse(status.Info["info"]);
        return info.RootElement.GetProperty("namespaces").GetProperty("network").GetString()!;
    }

    /// <summary>What a pod could leave behind on the node, each as a message; empty when nothing is left.</summary>
    public async Task<List<string>> LeftoversAsync(string id, string? netns, string? cgroupParent)
    {
        var left = new List<string>();
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(id, StringComparison.Ordinal)).ToList();
        if (mounts.Count > 0) left.Add("mounts: " + string.Join(" | ", mounts));
        if (netns is not null && File.Exists(netns)) left.Add($"netns pin file {netns}");
        var brif = $"/sys/class/net/{Bridge}/brif";
        if (Directory.Exists(brif) && Directory.EnumerateFileSystemEntries(brif).Any())
            left.Add("veths on the bridge: " + string.Join(", ", Directory.EnumerateFileSystemEntries(brif).Select(Path.GetFileName)));
        var iptables = await ProcessRunner.RunAsync("iptables-save", []);
        var rules = iptables.Stdout.Split('\n').Where(l => l.Contains(id, StringComparison.Ordinal)).ToList();
        if (rules.Count > 0) left.Add("iptables: " + string.Join(" | ", rules));
        var ipam = Path.Combine(IpamDir, $"hulle2e{N}");
        if (Directory.Exists(ipam))
        {
            var allocations = Directory.EnumerateFiles(ipam).Select(Path.GetFileName)
                .Where(f => f is not "lock" && !f!.StartsWith("last_reserved_ip", StringComparison.Ordinal)).ToList();
            if (allocations.Count > 0) left.Add("IPAM allocations: " + string.Join(", ", allocations));
        }
        if (Directory.Exists(Path.Combine(Hulld.State, "sandboxes", id))) left.Add("sandbox directory");
        if (cgroupParent is not null)
            foreach (var controller in new[] { "memory", "cpu", "pids" })
                if (Directory.Exists($"/sys/fs/cgroup/{controller}{cgroupParent}")) left.Add($"cgroup {controller}{cgroupParent}");
        return left;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            try
            {
                if (!Hulld.HasExited)
                    foreach (var pod in (await ListAsync()).Items)
                    {
                        try
                        {
                            await StopAsync(pod.Id);
                        }
                        catch (RpcException) { }
                        await RemoveAsync(pod.Id);
                    }
            }
            finally
            {
                // A pod that cannot be removed fails the test, but hulld goes in any case: a daemon left running would
                // keep its mounts and the next run's leak checks would find them.
                try
                {
                    await Hulld.DisposeAsync();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new InvalidOperationException($"{e.Message}\nhulld log:\n{Hulld.Log}", e);
                }
            }
        }
        finally
        {
            await ProcessRunner.RunAsync("ip", ["link", "del", Bridge]);
            foreach (var hierarchy in Directory.EnumerateDirectories("/sys/fs/cgroup"))
            {
                var dir = hierarchy + CgroupRoot;
                if (!Directory.Exists(dir)) continue;
                foreach (var child in Directory.EnumerateDirectories(dir)) TryRmdir(child);
                TryRmdir(dir);
            }
            if (Directory.Exists(Dir))
            {
                // Best effort, so that a failure above is the one reported.
                await ProcessRunner.RunAsync("umount", ["-l", Path.Combine(Dir, "state", "ns")]);
                try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
            }
        }
    }

    private static void TryRmdir(string dir)
    {
        try { Directory.Delete(dir); } catch (IOException) { }
    }
}
