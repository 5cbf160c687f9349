namespace Hull.Core.Events;

public enum ContainerEventKind { Created, Started, Stopped, Deleted }

/// <summary>A container lifecycle change, as the kubelet's evented PLEG consumes it.</summary>
public sealed record ContainerEvent(string ContainerId, string SandboxId, ContainerEventKind Kind, DateTimeOffset At);
