using Hull.Linux;

namespace Hull.Images.Snapshots;

/// <summary>
/// Layered file systems behind one interface, as containerd's snapshots.Snapshotter: a snapshot is
/// prepared (writable) on a committed parent, filled, then committed under a name (a chain ID) that
/// later snapshots use as their parent. Keys and names share one namespace per snapshotter.
/// </summary>
public interface ISnapshotter
{
    /// <summary>"overlayfs" or "native".</summary>
    string Name { get; }

    /// <summary>NotFound naming the key when there is no such snapshot.</summary>
    Task<SnapshotInfo> StatAsync(string key, CancellationToken cancellationToken);

    Task<SnapshotInfo?> TryStatAsync(string key, CancellationToken cancellationToken);

    /// <summary>Disk space and inodes the snapshot itself uses (its own directory, hard links counted once).</summary>
    Task<SnapshotUsage> UsageAsync(string key, CancellationToken cancellationToken);

    /// <summary>The mounts of an active or view snapshot (FailedPrecondition for a committed one).</summary>
    Task<IReadOnlyList<Mount>> MountsAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// Creates a writable snapshot on <paramref name="parent"/> (a committed snapshot, or null for an
    /// empty one) and returns how to mount it. AlreadyExists when <paramref name="key"/> is taken.
    /// </summary>
    Task<IReadOnlyList<Mount>> PrepareAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default);

    /// <summary>Creates a read-only view of <paramref name="parent"/>.</summary>
    Task<IReadOnlyList<Mount>> ViewAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default);

    /// <summary>Turns the active snapshot <paramref name="key"/> into the committed snapshot <paramref name="name"/>.</summary>
    Task CommitAsync(string name, string key, IReadOnlyDictionary<string, string>? labels = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes a snapshot; FailedPrecondition naming it while it has children. Crash-safe: the
    /// directory is renamed to removing-&lt;id&gt; in the metadata transaction and deleted after it.
    /// </summary>
    Task RemoveAsync(string key, CancellationToken cancellationToken);

    /// <summary>Every snapshot, ordered by key.</summary>
    Task<IReadOnlyList<SnapshotInfo>> WalkAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Deletes what an interrupted operation left on disk (half-created and half-removed directories,
    /// directories without metadata). Call at startup, before the snapshotter is used.
    /// </summary>
    Task CleanupAsync(CancellationToken cancellationToken);
}
