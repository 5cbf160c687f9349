using Hull.Pods.Stores;

namespace Hull.Pods.Images;

/// <summary>
/// The snapshots image garbage collection must keep: every container's writable snapshot (key = container id) and every
/// pod's pause-image snapshot, read from the stores (not the indexes), so even the collection that runs at start,
/// before anything is recovered, keeps them.
/// </summary>
public sealed class GcRoots(ContainerStore containers, SandboxStore sandboxes)
{
    public async Task<IReadOnlyCollection<string>> SnapshotKeysAsync(CancellationToken cancellationToken) =>
    [
        .. await containers.SnapshotKeysAsync(cancellationToken).ConfigureAwait(false),
        .. await sandboxes.InfraSnapshotKeysAsync(cancellationToken).ConfigureAwait(false),
    ];
}
