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
    /// After a restart: takes back a sandbox this sandboxer made (as last persisted) and returns it as it really is
    /// now: NotReady when its infra process or its pinned network namespace is gone.
    /// </summary>
    Task<SandboxInstance> RecoverAsync(PodSandboxSpec spec, SandboxInstance persisted, CancellationToken cancellationToken);

    /// <summary>The task endpoint of a started sandbox: create/start/signal/wait/exec/measure its containers.</summary>
    ITaskService Tasks(string sandboxId);

    /// <summary>What the handler supports, as CRI Status reports it.</summary>
    SandboxerFeatures Features { get; }
}

public sealed record SandboxerFeatures(bool RecursiveReadOnlyMounts, bool UserNamespaces);

public sealed record SandboxPlatform(string Os, string Architecture);

public sealed record SandboxExit(int ExitCode, DateTimeOffset ExitedAt);

/// <summary>A sandbox's life: Creating until Create and Start have both succeeded (a crash leaves it to be undone).</summary>
public enum SandboxState { Ready, NotReady, Creating }
