using Hull.Linux;
using Hull.Linux.Namespaces;
using Hull.Runtime.Spec;

namespace Hull.Pods.Host;

/// <summary>
/// The host effects of a container's bundle, behind one small interface so that the lifecycle's undo and recovery paths
/// can be tested without root: where a bundle lives, mounting the rootfs, writing the spec, removing it all.
/// </summary>
public interface IContainerFilesystem
{
    /// <summary>Where a container's bundle lives (its <c>rootfs</c> and <c>config.json</c> inside).</summary>
    string BundleDirectory(string containerId);

    /// <summary>
    /// Creates the bundle's rootfs directory and mounts the snapshot's mounts on it, in order. An idmapped overlay with the
    /// mapping of <paramref name="podUserNamespace"/> (the pod's, when it has its own) takes that namespace from its pin.
    /// </summary>
    void MountRootfs(string bundle, IReadOnlyList<Mount> mounts, PinnedUserNamespace? podUserNamespace);

    /// <summary>
    /// Mounts an image volume's snapshot on <c>image-volumes/&lt;name&gt;</c> in the bundle and returns that directory.
    /// <see cref="RemoveBundle"/> unmounts it.
    /// </summary>
    string MountImageVolume(string bundle, string name, IReadOnlyList<Mount> mounts);

    /// <summary>
    /// Makes the binds the OCI runtime cannot (idmapped, recursively read-only: <see cref="PreparedMounts"/>) under the
    /// bundle, and returns the spec naming them as plain binds. Undone by <see cref="RemoveBundle"/>.
    /// </summary>
    OciSpec PrepareMounts(string bundle, OciSpec spec, PinnedUserNamespace? podUserNamespace);

    /// <summary>
    /// Unmounts, in hulld's mount namespace, the binds <see cref="PrepareMounts"/> made, once the OCI runtime has bound them
    /// into the container's: left there, they would keep a host path's submounts busy (rmdir fails with EBUSY).
    /// </summary>
    void ReleasePreparedMounts(string bundle);

    /// <summary>Writes config.json atomically and durably.</summary>
    Task WriteSpecAsync(string bundle, OciSpec spec, CancellationToken cancellationToken);

    /// <summary>Reads config.json back, or null when there is none (a create that never got that far).</summary>
    Task<string?> ReadSpecAsync(string bundle, CancellationToken cancellationToken);

    /// <summary>Unmounts the rootfs, the image volumes and the prepared binds and deletes the bundle and the container's directory; idempotent.</summary>
    void RemoveBundle(string bundle);
}

/// <summary>Bundles under <c>&lt;state&gt;/containers/&lt;id&gt;/bundle</c>, with real mounts.</summary>
public sealed class HostContainerFilesystem(string stateDirectory) : IContainerFilesystem
{
    public string BundleDirectory(string containerId) => Path.Combine(stateDirectory, "containers", containerId, "bundle");

    private static string Rootfs(string bundle) => Path.Combine(bundle, "rootfs");

    /// <summary>Where a bundle's image volumes are mounted (not under rootfs: they reach the container as bind mounts).</summary>
    public const string ImageVolumesDirectory = "image-volumes";

    public void MountRootfs(string bundle, IReadOnlyList<Mount> mounts, PinnedUserNamespace? podUserNamespace)
    {
        string rootfs = Rootfs(bundle);
        // The container's directory and its bundle are owner only before the rootfs is mounted inside them.
        Directory.CreateDirectory(Path.GetDirectoryName(bundle)!, SpecWriter.OwnerOnly);
        Directory.CreateDirectory(bundle, SpecWriter.OwnerOnly);
        Directory.CreateDirectory(rootfs);
        using var idMaps = new IdMapNamespaces(podUserNamespace);
        Mounts.MountAll(mounts, rootfs, idMaps);
    }

    public string MountImageVolume(string bundle, string name, IReadOnlyList<Mount> mounts)
    {
        string target = Path.Combine(bundle, ImageVolumesDirectory, name);
        Directory.CreateDirectory(target);
        Mounts.MountAll(mounts, target);
        return target;
    }

    public OciSpec PrepareMounts(string bundle, OciSpec spec, PinnedUserNamespace? podUserNamespace) =>
        PreparedMounts.Make(spec, Path.Combine(bundle, PreparedMounts.DirectoryName), podUserNamespace);

    public void ReleasePreparedMounts(string bundle)
    {
        string directory = Path.Combine(bundle, PreparedMounts.DirectoryName);
        if (Directory.Exists(directory)) Mounts.UnmountAll(directory, detach: true);
    }

    public Task WriteSpecAsync(string bundle, OciSpec spec, CancellationToken cancellationToken) =>
        SpecWriter.WriteAsync(spec, bundle, cancellationToken);

    public async Task<string?> ReadSpecAsync(string bundle, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllTextAsync(Path.Combine(bundle, SpecWriter.ConfigFileName), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Never follows a mount: everything mounted below the bundle (the rootfs, the binds Hull prepared, which may be a
    /// host path or a volume) is unmounted first, and the bundle is deleted only when nothing is mounted below it any more;
    /// the rootfs itself is deleted non-recursively, so a mount that survived fails the removal rather than the files.
    /// </summary>
    public void RemoveBundle(string bundle)
    {
        if (Directory.Exists(bundle))
        {
            foreach (var mountPoint in MountInfo.PointsBelow(bundle).OrderByDescending(p => p.Length))
                Mounts.UnmountAll(mountPoint, detach: true);
            if (MountInfo.PointsBelow(bundle) is { Count: > 0 } left)
                throw new IOException($"bundle \"{bundle}\" still has mounts ({string.Join(", ", left)}); not deleting it");
        }
        string rootfs = Rootfs(bundle);
        if (Directory.Exists(rootfs)) Directory.Delete(rootfs, recursive: false);
        if (Directory.Exists(bundle)) Directory.Delete(bundle, recursive: true);
        string dir = Path.GetDirectoryName(bundle)!;
        if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
    }

    /// <summary>Unmounts what is mounted on <paramref name="target"/> and removes the (then empty) directory.</summary>
    private static void Unmount(string target)
    {
        if (!Directory.Exists(target)) return;
        Mounts.UnmountAll(target, detach: true);
        Directory.Delete(target, recursive: false);
    }
}
