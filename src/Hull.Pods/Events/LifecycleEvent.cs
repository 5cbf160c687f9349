using Hull.Core.Events;
using Hull.Pods.Index;
using Hull.Pods.Stores;

namespace Hull.Pods.Events;

public enum LifecycleEventKind { Created, Started, Stopped, Deleted }

/// <summary>
/// A change of a container, as the kubelet's evented PLEG consumes it, with the pod and all its containers as they were
/// at that moment (so subscribers report the state the event describes, not a later one). A pod sandbox's own changes
/// are published with <see cref="ContainerId"/> equal to <see cref="SandboxId"/>, as containerd does.
/// </summary>
public sealed record LifecycleEvent(string ContainerId, string SandboxId, LifecycleEventKind Kind, DateTimeOffset At,
    SandboxRecord? Pod, IReadOnlyList<ContainerRecord> Containers);

/// <summary>Publishes pod and container changes with a snapshot of the pod taken from the in-memory indexes (never waits).</summary>
public sealed class LifecycleEvents(ObjectIndex<SandboxRecord> pods, ObjectIndex<ContainerRecord> containers, int capacity = 1024)
{
    public EventBroadcaster<LifecycleEvent> Broadcaster { get; } = new(capacity);

    public void Container(ContainerRecord record, LifecycleEventKind kind) => Publish(record.Id, record.SandboxId, kind, null);

    /// <param name="pod">The pod as it should be reported, when it is no longer in the index (a removed pod).</param>
    public void Pod(string sandboxId, LifecycleEventKind kind, SandboxRecord? pod = null) => Publish(sandboxId, sandboxId, kind, pod);

    /// <summary>The pod (null when it is gone) and its containers that exist (not being created), from the indexes.</summary>
    public (SandboxRecord? Pod, IReadOnlyList<ContainerRecord> Containers) SnapshotOf(string sandboxId) =>
        (pods.Get(sandboxId), containers.List(c => c.SandboxId == sandboxId && c.State != ContainerState.Creating));

    private void Publish(string containerId, string sandboxId, LifecycleEventKind kind, SandboxRecord? pod)
    {
        if (Broadcaster.SubscriberCount == 0) return; // nobody listens: spare the snapshot
        var (current, list) = SnapshotOf(sandboxId);
        Broadcaster.Publish(new LifecycleEvent(containerId, sandboxId, kind, DateTimeOffset.UtcNow, pod ?? current, list));
    }
}
