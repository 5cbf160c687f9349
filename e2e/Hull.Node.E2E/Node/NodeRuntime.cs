using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;
using Grpc.Core;
using Grpc.Net.Client;

namespace Hull.Node.E2E.Node;

/// <summary>What the node's runtime needs from the node: its directory, CNI config and registry mapping.</summary>
/// <param name="Dir">The runtime's own directory (root, state, socket, log).</param>
/// <param name="CniConfDir">One bridge network, shared by every runtime kind so comparisons are fair.</param>
/// <param name="RegistryConfigPath">The certs.d directory with the test registry's hosts.toml.</param>
/// <param name="PauseImage">The pause image containerd needs (Hull runs none).</param>
/// <param name="NodeConditions">
/// The node's name and the kubelet's kubeconfig: hulld publishes its deprecation condition on the Node with the
/// kubelet's own identity (<c>system:node:NAME</c>), as an operator without the DaemonSet would configure it.
/// </param>
public sealed record NodeRuntimeSettings(string Dir, string CniConfDir, string RegistryConfigPath, string PauseImage,
    (string NodeName, string Kubeconfig)? NodeConditions = null);

/// <summary>The CRI runtime under the kubelet: hulld (what the suite tests) or containerd 1.6 (for the benchmark).</summary>
public interface INodeRuntime : IAsyncDisposable
{
    /// <summary>"hulld" or "containerd".</summary>
    string Name { get; }
    string Socket { get; }
    /// <summary>CRI calls straight to the runtime, bypassing the kubelet (Hull's own gRPC client works for both).</summary>
    CriClient Cri { get; }
    string Log { get; }
    int Pid { get; }
    /// <summary>SIGKILL, then a start over the same root and state: the crash every restart test starts from.</summary>
    Task KillAndRestartAsync();
    /// <summary>Stops and removes every pod sandbox through CRI (the kubelet is already stopped).</summary>
    Task RemoveAllPodsAsync();
}

public static class NodeRuntimes
{
    /// <summary>HULL_NODE_RUNTIME selects the runtime: hulld (the default) or containerd.</summary>
    public static string Selected => Environment.GetEnvironmentVariable("HULL_NODE_RUNTIME") is { Length: > 0 } name ? name : "hulld";

    public static Task<INodeRuntime> StartAsync(string name, NodeRuntimeSettings settings) => name switch
    {
        "hulld" => HulldNodeRuntime.StartAsync(settings),
        "containerd" => ContainerdNodeRuntime.StartAsync(settings),
        _ => throw new ArgumentException($"HULL_NODE_RUNTIME={name}: unknown runtime (hulld or containerd)"),
    };

    internal static async Task RemoveAllPodsAsync(CriClient cri)
    {
        var pods = await cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest());
        foreach (var pod in pods.Items)
        {
            await cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
            await cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
        }
    }
}

/// <summary>The repository's hulld on its default settings plus its own root, state, socket, CNI config and registry mapping.</summary>
public sealed class HulldNodeRuntime : INodeRuntime
{
    private readonly NodeRuntimeSettings _settings;

    private HulldNodeRuntime(NodeRuntimeSettings settings, HulldProcess hulld)
    {
        _settings = settings;
        Hulld = hulld;
    }

    public HulldProcess Hulld { get; private set; }
    public string Name => "hulld";
    public string Socket => Hulld.Socket;
    public CriClient Cri => Hulld.Cri;
    public string Log => Hulld.Log;
    public int Pid => Hulld.Pid;

    private string ConfigToml => $"""
        version = 3
        [plugins.'io.containerd.cri.v1.runtime'.cni]
          conf_dir = '{_settings.CniConfDir}'
          bin_dirs = ['/usr/lib/cni', '/opt/cni/bin']
        [plugins.'io.containerd.cri.v1.images'.registry]
          config_path = '{_settings.RegistryConfigPath}'
        {NodeConditionsToml}
        """;

    /// <summary>The reporter's section; a short resync so that a test sees the heartbeat move.</summary>
    private string NodeConditionsToml => _settings.NodeConditions is not { } node ? "" : $"""
        [plugins.'io.hull.kube.v1.node-conditions']
          enable = true
          kubeconfig = '{node.Kubeconfig}'
          node_name = '{node.NodeName}'
          resync_interval = '{NodeResync.TotalSeconds}s'
        """;

    /// <summary>How often hulld under the node fixture patches its condition again.</summary>
    public static readonly TimeSpan NodeResync = TimeSpan.FromSeconds(10);

    public static async Task<INodeRuntime> StartAsync(NodeRuntimeSettings settings)
    {
        Directory.CreateDirectory(settings.Dir);
        var runtime = new HulldNodeRuntime(settings, null!);
        runtime.Hulld = await HulldProcess.StartInAsync(settings.Dir, runtime.ConfigToml);
        return runtime;
    }

    public async Task KillAndRestartAsync()
    {
        await Hulld.KillAsync();
        Hulld.Channel.Dispose();
        Hulld = await HulldProcess.StartInAsync(_settings.Dir, ConfigToml);
    }

    public Task RemoveAllPodsAsync() => NodeRuntimes.RemoveAllPodsAsync(Cri);

    /// <summary>
    /// Stops hulld; <see cref="HulldProcess"/> asserts that nothing of it is left and removes its directory. Its log is
    /// kept next to the kubelet's (the node keeps its directory when something failed).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await File.WriteAllTextAsync(Path.Combine(Path.GetDirectoryName(_settings.Dir)!, "hulld.log"), Hulld.Log);
        try
        {
            await Hulld.DisposeAsync();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{e.Message}\nhulld log (tail):\n{string.Join('\n', Hulld.Log.Split('\n').TakeLast(60))}", e);
        }
    }
}

/// <summary>
/// Debian's containerd 1.6 with its built-in CRI plugin, its own root, state, sockets, runc root and the same CNI
/// config and registry mapping as hulld; the pause image comes from the test registry. Only for the side-by-side
/// benchmark (hack/bench-node.sh).
/// </summary>
public sealed class ContainerdNodeRuntime : INodeRuntime
{
    private readonly NodeRuntimeSettings _settings;
    private DaemonProcess _process = null!;
    private GrpcChannel _channel = null!;

    private ContainerdNodeRuntime(NodeRuntimeSettings settings) => _settings = settings;

    public string Name => "containerd";
    public string Socket => Path.Combine(_settings.Dir, "containerd.sock");
    public CriClient Cri => new(_channel);
    public string Log => _process.Log;
    public int Pid => _process.Pid;
    private string ConfigPath => Path.Combine(_settings.Dir, "config.toml");

    public static async Task<INodeRuntime> StartAsync(NodeRuntimeSettings settings)
    {
        Directory.CreateDirectory(settings.Dir);
        var d = settings.Dir;
        await File.WriteAllTextAsync(Path.Combine(d, "config.toml"), $"""
            version = 2
            root = "{d}/root"
            state = "{d}/state"
            oom_score = 0
            disabled_plugins = [
              "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
              "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
              "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp",
            ]
            [grpc]
              address = "{d}/containerd.sock"
            [ttrpc]
              address = "{d}/containerd.sock.ttrpc"
            [debug]
              address = ""
            [metrics]
              address = ""
            [plugins]
              [plugins."io.containerd.grpc.v1.cri"]
                disable_tcp_service = true
                stream_server_address = "127.0.0.1"
                stream_server_port = "0"
                sandbox_image = "{settings.PauseImage}"
                tolerate_missing_hugetlb_controller = true
                # Without CAP_SYS_RESOURCE (as here) runc cannot lower the pause container's oom_score_adj (-998).
                restrict_oom_score_adj = true
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                    Root = "{d}/runc"
                [plugins."io.containerd.grpc.v1.cri".cni]
                  bin_dir = "/usr/lib/cni"
                  conf_dir = "{settings.CniConfDir}"
                [plugins."io.containerd.grpc.v1.cri".registry]
                  config_path = "{settings.RegistryConfigPath}"
              [plugins."io.containerd.internal.v1.opt"]
                path = "{d}/opt"
            """);
        var runtime = new ContainerdNodeRuntime(settings);
        await runtime.StartProcessAsync();
        return runtime;
    }

    private async Task StartProcessAsync()
    {
        _process = DaemonProcess.Start("containerd", "containerd", ["--config", ConfigPath], Path.Combine(_settings.Dir, "containerd.log"));
        _channel = CriClient.Connect(Socket);
        await _process.WaitUntilAsync(async () =>
        {
            if (!File.Exists(Socket)) return false;
            try
            {
                await Cri.VersionAsync();
                return true;
            }
            catch (RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "CRI Version answers");
    }

    public async Task KillAndRestartAsync()
    {
        await _process.KillAsync();
        await _process.DisposeAsync();
        _channel.Dispose();
        await StartProcessAsync();
    }

    public Task RemoveAllPodsAsync() => NodeRuntimes.RemoveAllPodsAsync(Cri);

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _process.DisposeAsync();
        // Shims of pods that were removed exit by themselves; any left are ours and named by our directory.
        foreach (var line in HulldProcess.ProcessesMentioning(_settings.Dir))
            HulldProcess.Signal(int.Parse(line[..line.IndexOf(':')]), 9);
    }
}
