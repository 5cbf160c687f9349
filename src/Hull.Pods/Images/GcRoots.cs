using Hull.Pods.Stores;

namespace Hull.Pods.Images;

/// <summary>
/// What containers and pods hold of the image store, read from the stores (not the indexes), so even the collection that
/// runs at start, before anything is recovered, keeps it: the snapshots image garbage collection must keep (every
/// container's writable snapshot and image-volume views, every pod's pause-image snapshot), and the images that must
/// not be removed (those mounted as image volumes).
/// </summary>
public sealed class GcRoots(ContainerStore containers, SandboxStore sandboxes)
{
    public async Task<IReadOnlyCollection<string>> SnapshotKeysAsync(CancellationToken cancellationToken) =>
    [
        .. await containers.SnapshotKeysAsync(cancellationToken).ConfigureAwait(false),
        .. await sandboxes.InfraSnapshotKeysAsync(cancellationToken).ConfigureAwait(false),
    ];

    /// <summary>The container that mounts the image (by id) as a volume, named for an error message; null when none does.</summary>
    public Task<string?> ImageUserAsync(string imageId, CancellationToken cancellationToken) =>
        containers.ImageVolumeUserAsync(imageId, cancellationToken);
}
