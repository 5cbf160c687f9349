using Hull.Linux;
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

    /// <summary>Creates the bundle's rootfs directory and mounts the snapshot's mounts on it, in order.</summary>
    void MountRootfs(string bundle, IReadOnlyList<Mount> mounts);

    /// <summary>
    /// Mounts an image volume's snapshot on <c>image-volumes/&lt;name&gt;</c> in the bundle and returns that directory.
    /// <see cref="RemoveBundle"/> unmounts it.
    /// </summary>
    string MountImageVolume(string bundle, string name, IReadOnlyList<Mount> mounts);

    /// <summary>Writes config.json atomically and durably.</summary>
    Task WriteSpecAsync(string bundle, OciSpec spec, CancellationToken cancellationToken);

    /// <summary>Reads config.json back, or null when there is none (a create that never got that far).</summary>
    Task<string?> ReadSpecAsync(string bundle, CancellationToken cancellationToken);

    /// <summary>Unmounts the rootfs and the image volumes and deletes the bundle and the container's directory; idempotent.</summary>
    void RemoveBundle(string bundle);
}

/// <summary>Bundles under <c>&lt;state&gt;/containers/&lt;id&gt;/bundle</c>, with real mounts.</summary>
public sealed class HostContainerFilesystem(string stateDirectory) : IContainerFilesystem
{
    public string BundleDirectory(string containerId) => Path.Combine(stateDirectory, "containers", containerId, "bundle");

    private static string Rootfs(string bundle) => Path.Combine(bundle, "rootfs");

    /// <summary>Where a bundle's image volumes are mounted (not under rootfs: they reach the container as bind mounts).</summary>
    public const string ImageVolumesDirectory = "image-volumes";

    public void MountRootfs(string bundle, IReadOnlyList<Mount> mounts)
    {
        string rootfs = Rootfs(bundle);
        // The container's directory and its bundle are owner only before the rootfs is mounted inside them.
        Directory.CreateDirectory(Path.GetDirectoryName(bundle)!, SpecWriter.OwnerOnly);
        Directory.CreateDirectory(bundle, SpecWriter.OwnerOnly);
        Directory.CreateDirectory(rootfs);
        Mounts.MountAll(mounts, rootfs);
    }

    public string MountImageVolume(string bundle, string name, IReadOnlyList<Mount> mounts)
    {
        string target = Path.Combine(bundle, ImageVolumesDirectory, name);
        Directory.CreateDirectory(target);
        Mounts.MountAll(mounts, target);
        return target;
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

    /// <summary>Never follows a rootfs that is still mounted: deleting it non-recursively fails rather than deleting the container's files.</summary>
    public void RemoveBundle(string bundle)
    {
        string volumes = Path.Combine(bundle, ImageVolumesDirectory);
        if (Directory.Exists(volumes))
        {
            foreach (var volume in Directory.EnumerateDirectories(volumes)) Unmount(volume);
            Directory.Delete(volumes, recursive: false);
        }
        Unmount(Rootfs(bundle));
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
