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

    /// <summary>Writes config.json atomically and durably.</summary>
    Task WriteSpecAsync(string bundle, OciSpec spec, CancellationToken cancellationToken);

    /// <summary>Reads config.json back, or null when there is none (a create that never got that far).</summary>
    Task<string?> ReadSpecAsync(string bundle, CancellationToken cancellationToken);

    /// <summary>Unmounts the rootfs and deletes the bundle and the container's directory; idempotent.</summary>
    void RemoveBundle(string bundle);
}

/// <summary>Bundles under <c>&lt;state&gt;/containers/&lt;id&gt;/bundle</c>, with real mounts.</summary>
public sealed class HostContainerFilesystem(string stateDirectory) : IContainerFilesystem
{
    public string BundleDirectory(string containerId) => Path.Combine(stateDirectory, "containers", containerId, "bundle");

    private static string Rootfs(string bundle) => Path.Combine(bundle, "rootfs");

    public void MountRootfs(string bundle, IReadOnlyList<Mount> mounts)
    {
        string rootfs = Rootfs(bundle);
        Directory.CreateDirectory(rootfs);
        Mounts.MountAll(mounts, rootfs);
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
        string rootfs = Rootfs(bundle);
        if (Directory.Exists(rootfs))
        {
            Mounts.UnmountAll(rootfs, detach: true);
            Directory.Delete(rootfs, recursive: false);
        }
        if (Directory.Exists(bundle)) Directory.Delete(bundle, recursive: true);
        string dir = Path.GetDirectoryName(bundle)!;
        if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
    }
}
