using Hull.Runtime.Spec;

namespace Hull.Nri;

// What the pod and container lifecycle hands NRI and gets back: plain records, no CRI or protobuf types.

/// <summary>A pod as NRI plugins see it.</summary>
public sealed record NriPod
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Uid { get; init; }
    public required string Namespace { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public string RuntimeHandler { get; init; } = "";
    public string CgroupParent { get; init; } = "";
    /// <summary>The pod's own cgroup (its infra container's), when it has one.</summary>
    public string CgroupsPath { get; init; } = "";
    /// <summary>The pod's namespaces: type ("network", "ipc", "uts", ...) and path.</summary>
    public IReadOnlyList<OciNamespace> Namespaces { get; init; } = [];
    public OciResources? PodOverhead { get; init; }
    public OciResources? PodResources { get; init; }
    /// <summary>The infra process's pid, 0 when there is none.</summary>
    public uint Pid { get; init; }
    public IReadOnlyList<string> Ips { get; init; } = [];
}

public enum NriContainerState { Unknown, Created, Paused, Running, Stopped }

/// <summary>
/// A container as NRI plugins see it. Its process, mounts, hooks and Linux settings come from <see cref="Spec"/>:
/// for CreateContainer the proposed spec, afterwards the one it was created with.
/// </summary>
public sealed record NriContainer
{
    public required string Id { get; init; }
    public required string PodSandboxId { get; init; }
    public required string Name { get; init; }
    public NriContainerState State { get; init; }
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public OciSpec? Spec { get; init; }
    public uint Pid { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public int ExitCode { get; init; }
    public string StatusReason { get; init; } = "";
    public string StatusMessage { get; init; } = "";
    public IReadOnlyList<string> CdiDevices { get; init; } = [];
    public string ImageName { get; init; } = "";
    public string ImageDigest { get; init; } = "";
    public string ImageConfigDigest { get; init; } = "";
}

/// <summary>Everything the runtime knows, for synchronizing a newly connected plugin.</summary>
public sealed record NriSnapshot(IReadOnlyList<NriPod> Pods, IReadOnlyList<NriContainer> Containers);

/// <summary>A change of an existing container's resources a plugin asked for.</summary>
public sealed record NriContainerUpdate(string ContainerId, OciResources Resources, bool IgnoreFailure);

/// <summary>A plugin's request to stop a container.</summary>
public sealed record NriContainerEviction(string ContainerId, string Reason);

/// <summary>What CreateContainer's plugins decided: the adjustment for the new container, updates and evictions of others.</summary>
public sealed record NriCreateResult(ContainerAdjustment Adjustment, IReadOnlyList<NriContainerUpdate> Updates, IReadOnlyList<NriContainerEviction> Evictions);

/// <summary>What UpdateContainer's plugins decided: the resources to give the container, updates and evictions of others.</summary>
public sealed record NriUpdateResult(OciResources? Resources, IReadOnlyList<NriContainerUpdate> Updates, IReadOnlyList<NriContainerEviction> Evictions);

/// <summary>A connected plugin, for <c>hullctl nri ls</c>.</summary>
public sealed record NriPluginInfo(string Name, string Index, bool PreInstalled, int Pid, IReadOnlyList<string> Events, string? LastError);

/// <summary>What NRI needs from the runtime: its state for Synchronize, and applying updates plugins send on their own.</summary>
public interface INriRuntime
{
    Task<NriSnapshot> SnapshotAsync(CancellationToken cancellationToken);

    /// <summary>Applies unsolicited updates and evictions; returns the updates that failed.</summary>
    Task<IReadOnlyList<NriContainerUpdate>> UpdateContainersAsync(IReadOnlyList<NriContainerUpdate> updates,
        IReadOnlyList<NriContainerEviction> evictions, CancellationToken cancellationToken);
}
