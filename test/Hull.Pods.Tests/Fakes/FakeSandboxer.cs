using System.Collections.Concurrent;
using Hull.Core;
using Hull.Runtime.Handlers;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests.Fakes;

/// <summary>A sandboxer that keeps pods in memory and records what was done to them; its task endpoint is <see cref="Tasks"/>.</summary>
public sealed class FakeSandboxer(Faults faults) : ISandboxController
{
    public const string SandboxerName = "fake";

    private readonly ConcurrentDictionary<string, SandboxInstance> _pods = new(StringComparer.Ordinal);

    public FakeTaskService TaskService { get; } = new(faults);

    /// <summary>Pods this sandboxer still holds (made and not shut down).</summary>
    public IReadOnlyCollection<string> Live => _pods.Keys.ToList();

    /// <summary>Every id shut down, in order.</summary>
    public ConcurrentQueue<string> ShutDown { get; } = new();

    /// <summary>What <see cref="RecoverAsync"/> reports; ready unless a test says otherwise.</summary>
    public SandboxState StateAfterRestart { get; set; } = SandboxState.Ready;

    /// <summary>The persisted instance each recovered pod was handed back (what its undo has to work with).</summary>
    public ConcurrentDictionary<string, SandboxInstance> Recovered { get; } = new(StringComparer.Ordinal);

    public string Name => SandboxerName;

    public async Task<SandboxInstance> CreateAsync(PodSandboxSpec spec, CancellationToken cancellationToken)
    {
        // Names what it will start, as the podsandbox sandboxer names a PID-sharing pod's infra task before starting it.
        var instance = new SandboxInstance
        {
            Id = spec.Id, CreatedAt = DateTimeOffset.UtcNow, Sandboxer = Name, State = SandboxState.NotReady, InfraTaskId = "infra-" + spec.Id,
            UserNsPath = spec.UserNamespace.IsPod ? $"/run/fake/ns/user/{spec.Id}" : "",
        };
        _pods[spec.Id] = instance; // made before the step can fail: the caller must shut it down
        await faults.StepAsync("sandbox.create").ConfigureAwait(false);
        return instance;
    }

    public async Task<SandboxInstance> StartAsync(string sandboxId, CancellationToken cancellationToken)
    {
        await faults.StepAsync("sandbox.start").ConfigureAwait(false);
        return _pods[sandboxId] = Get(sandboxId) with { State = SandboxState.Ready };
    }

    public Task<SandboxPlatform> PlatformAsync(string sandboxId, CancellationToken cancellationToken) => Task.FromResult(new SandboxPlatform("linux", "amd64"));

    public async Task StopAsync(string sandboxId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await faults.StepAsync("sandbox.stop").ConfigureAwait(false);
        _pods[sandboxId] = Get(sandboxId) with { State = SandboxState.NotReady };
    }

    public Task<SandboxExit> WaitAsync(string sandboxId, CancellationToken cancellationToken) => new TaskCompletionSource<SandboxExit>().Task;

    public Task<SandboxStatus> StatusAsync(string sandboxId, bool verbose, CancellationToken cancellationToken) =>
        Task.FromResult(new SandboxStatus(Get(sandboxId), null, new Dictionary<string, string>()));

    public async Task ShutdownAsync(string sandboxId, CancellationToken cancellationToken)
    {
        await faults.StepAsync("sandbox.shutdown").ConfigureAwait(false);
        _pods.TryRemove(sandboxId, out _);
        ShutDown.Enqueue(sandboxId);
    }

    public Task<SandboxMetrics> MetricsAsync(string sandboxId, CancellationToken cancellationToken) =>
        Task.FromResult(new SandboxMetrics(DateTimeOffset.UtcNow, 0, 0, []));

    public Task UpdateAsync(string sandboxId, SandboxResources resources, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<SandboxInstance> RecoverAsync(PodSandboxSpec spec, SandboxInstance persisted, DateTimeOffset? exitedAt, CancellationToken cancellationToken)
    {
        Recovered[spec.Id] = persisted;
        var instance = persisted with { State = persisted.State == SandboxState.Ready ? StateAfterRestart : persisted.State };
        _pods[spec.Id] = instance;
        return Task.FromResult(instance);
    }

    public Task<IReadOnlyList<string>> SweepOrphansAsync(IReadOnlySet<string> known, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<string>>([]);

    public Task ReleaseUnusedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A connection to an in-memory stream (the pod's "server" writes nothing).</summary>
    public Task<PodConnection> ConnectAsync(string sandboxId, int port, CancellationToken cancellationToken)
    {
        Get(sandboxId);
        Connections.Enqueue((sandboxId, port));
        return Task.FromResult(new PodConnection(new MemoryStream(), () => ValueTask.CompletedTask));
    }

    /// <summary>Every port-forward connection opened, in order.</summary>
    public ConcurrentQueue<(string SandboxId, int Port)> Connections { get; } = new();

    public ITaskService Tasks(string sandboxId)
    {
        Get(sandboxId);
        return TaskService;
    }

    public RuntimeHandlerFeatures FeaturesFor(RuntimeHandler handler) => new();

    public IReadOnlyDictionary<string, string> Describe(RuntimeHandler handler) => new Dictionary<string, string>();

    private SandboxInstance Get(string id) =>
        _pods.TryGetValue(id, out var instance) ? instance : throw new HullException(ErrorKind.NotFound, $"pod sandbox \"{id}\" not found");
}
