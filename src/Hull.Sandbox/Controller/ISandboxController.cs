using Hull.Runtime.Handlers;
using Hull.Runtime.Tasks;

namespace Hull.Sandbox.Controller;

/// <summary>
/// containerd's sandbox Controller API: how a pod is isolated is the sandboxer's business. The CRI
/// layer asks the sandboxer named by the pod's runtime handler and, once the pod is started, talks
/// to its containers only through the <see cref="ITaskService"/> the sandbox hands back.
/// </summary>
public interface ISandboxController
{
    /// <summary>The sandboxer's name, as <c>runtimes.&lt;handler&gt;.sandboxer</c> names it (e.g. "podsandbox").</summary>
    string Name { get; }

    /// <summary>Prepares the pod's environment (namespaces, network, files, cgroup). Undoes its own work on failure.</summary>
    Task<SandboxInstance> CreateAsync(PodSandboxSpec spec, CancellationToken cancellationToken);

    /// <summary>Starts the pod (its infra process when it needs one) and returns where its containers run.</summary>
    Task<SandboxInstance> StartAsync(string sandboxId, CancellationToken cancellationToken);

    Task<SandboxPlatform> PlatformAsync(string sandboxId, CancellationToken cancellationToken);

    /// <summary>Stops the pod's infra process and tears its network down; idempotent.</summary>
    Task StopAsync(string sandboxId, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Completes when the sandbox has exited.</summary>
    Task<SandboxExit> WaitAsync(string sandboxId, CancellationToken cancellationToken);

    Task<SandboxStatus> StatusAsync(string sandboxId, bool verbose, CancellationToken cancellationToken);

    /// <summary>Removes everything the sandbox owns; idempotent.</summary>
    Task ShutdownAsync(string sandboxId, CancellationToken cancellationToken);

    Task<SandboxMetrics> MetricsAsync(string sandboxId, CancellationToken cancellationToken);

    Task UpdateAsync(string sandboxId, SandboxResources resources, CancellationToken cancellationToken);

    /// <summary>
    /// After a restart: takes back a sandbox this sandboxer made (as last persisted, with the exit time the store
    /// recorded, if any) and returns it as it really is now: NotReady when its infra process or its pinned network
    /// namespace is gone.
    /// </summary>
    Task<SandboxInstance> RecoverAsync(PodSandboxSpec spec, SandboxInstance persisted, DateTimeOffset? exitedAt, CancellationToken cancellationToken);

    /// <summary>
    /// After recovery: removes what this sandboxer finds on the node for sandboxes the store does not know (a crash
    /// between making something and persisting it). Returns the ids swept.
    /// </summary>
    /// <param name="known">Every sandbox id in the store, whatever its sandboxer and state.</param>
    Task<IReadOnlyList<string>> SweepOrphansAsync(IReadOnlySet<string> known, CancellationToken cancellationToken);

    /// <summary>At daemon shutdown: releases node-wide resources no sandbox uses any more (sandboxes keep running).</summary>
    void ReleaseUnused();

    /// <summary>The task endpoint of a started sandbox: create/start/signal/wait/exec/measure its containers.</summary>
    ITaskService Tasks(string sandboxId);

    /// <summary>What pods of <paramref name="handler"/> can do on this node, as CRI Status reports it.</summary>
    RuntimeHandlerFeatures FeaturesFor(RuntimeHandler handler);
}

public sealed record SandboxPlatform(string Os, string Architecture);

public sealed record SandboxExit(int ExitCode, DateTimeOffset ExitedAt);

/// <summary>A sandbox's life: Creating until Create and Start have both succeeded (a crash leaves it to be undone).</summary>
public enum SandboxState { Ready, NotReady, Creating }

/// <summary>The sandboxers of this hulld, by name (<c>runtimes.&lt;handler&gt;.sandboxer</c>).</summary>
public sealed class Sandboxers(IEnumerable<ISandboxController> sandboxers)
{
    private readonly Dictionary<string, ISandboxController> _byName = sandboxers.ToDictionary(s => s.Name, StringComparer.Ordinal);

    public IEnumerable<ISandboxController> All => _byName.Values;

    public ISandboxController? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The sandboxer named <paramref name="name"/>; InvalidArgument naming the ones Hull has when there is none.</summary>
    public ISandboxController Get(string name) => Find(name) ?? throw new Core.HullException(Core.ErrorKind.InvalidArgument,
        $"sandboxer \"{name}\" is not available (known: {Known})");

    /// <summary>The sandboxer that serves <paramref name="handler"/>'s pods; InvalidArgument naming both when this hulld has none.</summary>
    public ISandboxController For(Runtime.Handlers.RuntimeHandler handler) => Find(handler.Sandboxer) ?? throw new Core.HullException(
        Core.ErrorKind.InvalidArgument,
        $"runtime handler \"{handler.Name}\" uses sandboxer \"{handler.Sandboxer}\", which this hulld does not have (known: {Known})");

    private string Known => string.Join(", ", _byName.Keys.Order(StringComparer.Ordinal));
}
