using System.Net;
using System.Text.Json.Nodes;
using Hull.Core.Processes;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.Cni;

/// <summary>
/// A bridge network of its own for one test, with the real Debian plugins: bridge <c>hulltest&lt;n&gt;</c>, subnet
/// 10.99.&lt;n&gt;.0/24, host-local allocations, cache, conf dir and pinned namespaces all under a temp directory.
/// Dispose tears down every pod it made (best effort), unpins them and deletes the bridge.
/// </summary>
public sealed class BridgeTestNetwork : IDisposable
{
    private static int s_next = Random.Shared.Next(0, 200);
    private readonly List<PodNetworkRequest> _pods = [];

    public BridgeTestNetwork(bool ipMasq = true, bool portmap = true)
    {
        for (int tries = 0; ; tries++)
        {
            N = Interlocked.Increment(ref s_next) % 250 + 1;
            if (!Directory.Exists($"/sys/class/net/hulltest{N}") || tries > 250) break;
        }
        Pinner = new NamespacePinner(Dir.Sub("state"));
        Directory.CreateDirectory(ConfDir);
        var plugins = new JsonArray(new JsonObject
        {
            ["type"] = "bridge",
            ["bridge"] = Bridge,
            ["isGateway"] = true,
            ["ipMasq"] = ipMasq,
            ["ipam"] = new JsonObject
            {
                ["type"] = "host-local",
                ["dataDir"] = IpamDir,
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet })),
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
            },
        });
        if (portmap) plugins.Add(new JsonObject { ["type"] = "portmap", ["capabilities"] = new JsonObject { ["portMappings"] = true }, ["snat"] = true });
        WriteConfig(new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = Name, ["plugins"] = plugins });
    }

    public int N { get; }
    public TempDirectory Dir { get; } = new();
    public NamespacePinner Pinner { get; }
    public string Name => $"hulltest{N}";
    public string Bridge => $"hulltest{N}";
    public string Subnet => $"10.99.{N}.0/24";
    public IPAddress Gateway => IPAddress.Parse($"10.99.{N}.1");
    public string ConfDir => Dir.Sub("net.d");
    public string IpamDir => Dir.Sub("ipam");
    public string ConfigPath => Path.Combine(ConfDir, "10-test.conflist");

    /// <summary>Files host-local keeps per allocated IP (it also keeps <c>lock</c> and <c>last_reserved_ip.0</c>).</summary>
    public IReadOnlyList<string> Allocations =>
        Directory.Exists(Path.Combine(IpamDir, Name))
            ? Directory.EnumerateFiles(Path.Combine(IpamDir, Name)).Select(Path.GetFileName).OfType<string>()
                .Where(f => IPAddress.TryParse(f, out _)).ToList()
            : [];

    public void WriteConfig(JsonObject conflist) => File.WriteAllText(ConfigPath, conflist.ToJsonString());

    public CniManager NewManager() => new(new CniOptions
    {
        ConfDir = ConfDir,
        BinDirs = [HostPrerequisites.CniBinDir],
        CacheDir = Dir.Sub("cache"),
        PluginTimeout = TimeSpan.FromSeconds(20),
    });

    /// <summary>Pins a netns for a new pod and returns the request to attach it with.</summary>
    public async Task<PodNetworkRequest> NewPodAsync(string name, IReadOnlyList<CniPortMapping>? ports = null)
    {
        string id = $"{name}{N}{Guid.NewGuid():N}"[..Math.Min(name.Length + 20, 64)];
        var pinned = await Pinner.PinAsync(new NamespacePinRequest(id) { Namespaces = Linux.Namespaces.NamespaceTypes.Network });
        var pod = new PodNetworkRequest(id, pinned.NetworkPath!)
        {
            PodName = name,
            PodNamespace = "hull-test",
            PodUid = Guid.NewGuid().ToString(),
            PortMappings = ports ?? [],
        };
        lock (_pods) _pods.Add(pod);
        return pod;
    }

    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var outcome = await ProcessRunner.RunAsync(new ProcessSpec(file, args) { Timeout = TimeSpan.FromSeconds(20) });
        if (outcome.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {outcome.ExitCode}: {outcome.Stderr}");
        return outcome.StdoutText;
    }

    /// <summary>The iptables rules (all tables) that mention <paramref name="text"/>.</summary>
    public static async Task<IReadOnlyList<string>> IptablesRulesWith(string text) =>
        (await RunAsync("iptables-save")).Split('\n').Where(l => l.Contains(text, StringComparison.Ordinal)).ToList();

    public void Dispose()
    {
        var manager = NewManager();
        foreach (var pod in _pods)
        {
            try { manager.TeardownAsync(pod).GetAwaiter().GetResult(); } catch (Exception) { }
            try { Pinner.Remove(pod.SandboxId); } catch (Exception) { }
        }
        try { RunAsync("ip", "link", "del", Bridge).GetAwaiter().GetResult(); } catch (Exception) { }
        Dir.Dispose();
    }
}
