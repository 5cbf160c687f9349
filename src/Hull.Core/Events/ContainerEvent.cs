namespace Hull.Core.Events;

public enum ContainerEventKind { Created, Started, Stopped, Deleted }

/// <summary>
/// A container lifecycle change, as the kubelet's evented PLEG consumes it. A pod sandbox's own changes are published with
/// <see cref="ContainerId"/> equal to <see cref="SandboxId"/>, as containerd does.
/// </summary>
public sealed record ContainerEvent(string ContainerId, string SandboxId, ContainerEventKind Kind, DateTimeOffset At)
{
    /// <summary>
    /// The publisher's snapshot of the pod and all its containers taken when the change happened, so subscribers report
    /// the state the event describes rather than a later one (Hull.Cri puts a ContainerEventSnapshot here); null when none was taken.
    /// </summary>
    public object? Snapshot { get; init; }
}
