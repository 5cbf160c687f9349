using System.Collections.Concurrent;
using Hull.Core.Deprecations;
using Hull.Linux.Processes;
using Hull.Runtime.Spec;
using Hull.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Hull.Nri.Tests;

/// <summary>
/// A test that runs the real upstream NRI plugins (containerd/nri v0.12.2, unpacked by ../shared/tools/install.sh).
/// Skipped with the reason when they are missing, except under CI (HULL_E2E_REQUIRED=1), where that fails.
/// </summary>
public sealed class PluginFactAttribute : FactAttribute
{
    public PluginFactAttribute()
    {
        if (!File.Exists(UpstreamNriPlugins.Path("logger")) && Environment.GetEnvironmentVariable("HULL_E2E_REQUIRED") != "1")
            Skip = $"the upstream NRI plugins are not in {UpstreamNriPlugins.Directory}; run ../shared/tools/install.sh";
    }
}

/// <summary>The runtime side NRI needs: a fixed state for Synchronize, and a record of unsolicited updates.</summary>
public sealed class FakeRuntime : INriRuntime
{
    public NriSnapshot State { get; set; } = new([], []);
    public ConcurrentQueue<NriContainerUpdate> Updates { get; } = new();

    public Task<NriSnapshot> SnapshotAsync(CancellationToken cancellationToken) => Task.FromResult(State);

    public Task<IReadOnlyList<NriContainerUpdate>> UpdateContainersAsync(IReadOnlyList<NriContainerUpdate> updates,
        IReadOnlyList<NriContainerEviction> evictions, CancellationToken cancellationToken)
    {
        foreach (var u in updates) Updates.Enqueue(u);
        return Task.FromResult<IReadOnlyList<NriContainerUpdate>>([]);
    }
}

/// <summary>Collects log lines, so tests can see what plugins wrote to stderr.</summary>
public sealed class ListLogger : ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;
    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue(formatter(state, exception));
}

/// <summary>A temporary NRI setup: plugin_path, plugin_config_path, a socket, and the host once started.</summary>
public sealed class NriTestEnvironment : IAsyncDisposable
{
    private readonly List<int> _externalPids = [];

    public string Root { get; } = Directory.CreateTempSubdirectory("hull-nri-").FullName;
    public string PluginPath => Path.Combine(Root, "plugins");
    public string ConfigPath => Path.Combine(Root, "conf.d");
    public string SocketPath => Path.Combine(Root, "nri.sock");
    public FakeRuntime Runtime { get; } = new();
    public ListLogger Logger { get; } = new();
    public NriHost? Host { get; private set; }

    public NriTestEnvironment()
    {
        Directory.CreateDirectory(PluginPath);
        Directory.CreateDirectory(ConfigPath);
    }

    /// <summary>Installs a pre-installed plugin "NN-name": a script running the upstream binary with <paramref name="arguments"/>.</summary>
    public void Install(string indexedName, string binary, params string[] arguments) =>
        UpstreamNriPlugins.Install(PluginPath, indexedName, binary, arguments);

    public string LogFile(string name) => Path.Combine(Root, $"{name}.log");

    public async Task<NriHost> StartAsync(Func<NriOptions, NriOptions>? configure = null, DeprecationRegistry? deprecations = null)
    {
        var options = new NriOptions
        {
            SocketPath = SocketPath,
            PluginPath = PluginPath,
            PluginConfigPath = ConfigPath,
            RequestTimeout = TimeSpan.FromSeconds(2),
            RegistrationTimeout = TimeSpan.FromSeconds(10),
        };
        Host = new NriHost(configure?.Invoke(options) ?? options, Logger, deprecations);
        await Host.StartAsync(Runtime, CancellationToken.None);
        return Host;
    }

    /// <summary>Starts a plugin process that connects to the socket itself (an external plugin).</summary>
    public int StartExternal(string binary, params string[] arguments)
    {
        int pid = ProcessSpawner.Spawn(new SpawnRequest(UpstreamNriPlugins.Path(binary), arguments));
        lock (_externalPids) _externalPids.Add(pid);
        return pid;
    }

    public async Task WaitForPluginsAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Host!.ListPlugins().Count < count)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Host.ListPlugins().Count} of {count} plugins connected; log:\n{string.Join('\n', Logger.Lines)}");
            await Task.Delay(20);
        }
    }

    /// <summary>One pod with one container through every event, in lifecycle order.</summary>
    public static async Task RunEveryEventAsync(Hull.Nri.NriHost host)
    {
        var pod = Pod();
        var ctr = Container();
        await host.RunPodSandboxAsync(pod);
        await host.CreateContainerAsync(pod, ctr);
        await host.PostCreateContainerAsync(pod, ctr);
        await host.StartContainerAsync(pod, ctr);
        await host.PostStartContainerAsync(pod, ctr);
        await host.UpdateContainerAsync(pod, ctr, new OciResources { Cpu = new OciCpu { Shares = 512 } });
        await host.PostUpdateContainerAsync(pod, ctr);
        await host.UpdatePodSandboxAsync(pod, null, new OciResources { Memory = new OciMemory { Limit = 1 << 30 } });
        await host.PostUpdatePodSandboxAsync(pod);
        await host.StopContainerAsync(pod, ctr);
        await host.RemoveContainerAsync(pod, ctr);
        await host.StopPodSandboxAsync(pod);
        await host.RemovePodSandboxAsync(pod);
    }

    public static NriPod Pod(string id = "pod-1", IReadOnlyDictionary<string, string>? annotations = null) => new()
    {
        Id = id,
        Name = "pod",
        Uid = "uid-1",
        Namespace = "default",
        Annotations = annotations ?? new Dictionary<string, string>(),
    };

    public static NriContainer Container(string id = "ctr-1", string name = "ctr") => new()
    {
        Id = id,
        PodSandboxId = "pod-1",
        Name = name,
        State = NriContainerState.Created,
        Spec = new OciSpec
        {
            Process = new OciProcess { Args = ["sh"], Env = ["PATH=/bin"] },
            Linux = new OciLinux { Namespaces = [new OciNamespace { Type = "network", Path = "/run/netns/x" }, new OciNamespace { Type = "mount" }] },
        },
    };

    public async ValueTask DisposeAsync()
    {
        if (Host is not null) await Host.DisposeAsync();
        lock (_externalPids)
            foreach (var pid in _externalPids)
            {
                Signals.TrySend(pid, Signals.SIGKILL);
                try { ChildProcesses.WaitForExitAsync(pid).Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
            }
        Directory.Delete(Root, recursive: true);
    }
}
