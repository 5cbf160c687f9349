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

    /// <summary>
    /// At daemon shutdown: lets go of what this process holds that running sandboxes do not need (node-wide mounts no
    /// pod uses any more, connections to guest agents, work in the background). Sandboxes keep running.
    /// </summary>
    Task ReleaseUnusedAsync(CancellationToken cancellationToken);

    /// <summary>The task endpoint of a started sandbox: create/start/signal/wait/exec/measure its containers.</summary>
    ITaskService Tasks(string sandboxId);

    /// <summary>
    /// Port-forward: a TCP connection to 127.0.0.1:<paramref name="port"/> as the pod's own processes see it (in the
    /// pod's network namespace, or inside its VM). Unavailable when nothing listens there.
    /// </summary>
    Task<PodConnection> ConnectAsync(string sandboxId, int port, CancellationToken cancellationToken);

    /// <summary>What pods of <paramref name="handler"/> can do on this node, as CRI Status reports it.</summary>
    RuntimeHandlerFeatures FeaturesFor(RuntimeHandler handler);

    /// <summary>What this sandboxer has to say about <paramref name="handler"/> on this node, for <c>hullctl info</c> (e.g. the VM accelerator).</summary>
    IReadOnlyDictionary<string, string> Describe(RuntimeHandler handler);
}

/// <summary>
/// A connection into a pod (<see cref="ISandboxController.ConnectAsync"/>): a duplex stream whose sending side can be
/// closed alone, so the pod's server reads the end of the client's data and can still answer.
/// </summary>
public sealed class PodConnection(Stream stream, Func<ValueTask> closeSend) : IAsyncDisposable
{
    public Stream Stream => stream;

    /// <summary>No more data goes to the pod (a TCP half-close); what it sends can still be read.</summary>
    public ValueTask CloseSendAsync() => closeSend();

    public ValueTask DisposeAsync() => stream.DisposeAsync();
}

public sealed record SandboxPlatform(string Os, string Architecture);

public sealed record SandboxExit(int ExitCode, DateTimeOffset ExitedAt);

/// <summary>A sandbox's life: Creating until Create and Start have both succeeded (a crash leaves it to be undone).</summary>
public enum SandboxState { Ready, NotReady, Creating }

/// <summary>
/// The sandboxers of this hulld, by name (<c>runtimes.&lt;handler&gt;.sandboxer</c>). Each owns its own directories
/// (podsandbox <c>&lt;state&gt;/sandboxes/</c>, microvm <c>&lt;state&gt;/microvm/</c>), so their orphan sweeps do not
/// depend on each other's order; <see cref="All"/> keeps the order given all the same.
/// </summary>
public sealed class Sandboxers
{
    private readonly IReadOnlyList<ISandboxController> _all;
    private readonly Dictionary<string, ISandboxController> _byName;

    public Sandboxers(IEnumerable<ISandboxController> sandboxers)
    {
        _all = sandboxers.ToList();
        _byName = _all.ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    /// <summary>Every sandboxer, in the order given.</summary>
    public IEnumerable<ISandboxController> All => _all;

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
