namespace Hull.Images.Snapshots;

public enum SnapshotKind
{
    /// <summary>Writable; what a container mounts, or what a layer is unpacked into before it is committed.</summary>
    Active,

    /// <summary>Immutable; the parent of other snapshots (an unpacked layer, named by its chain ID).</summary>
    Committed,

    /// <summary>A read-only view of a committed snapshot.</summary>
    View,
}

/// <summary>A snapshot as its snapshotter reports it (containerd's snapshots.Info).</summary>
/// <param name="Key">The key of an active or view snapshot, the name of a committed one.</param>
/// <param name="Parent">The name of the committed parent, null for a base snapshot.</param>
public sealed record SnapshotInfo(
    string Key,
    string? Parent,
    SnapshotKind Kind,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset Created,
    DateTimeOffset Updated);
