using Hull.Linux;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// The host directory a pod's VM sees over virtio-9p (at <see cref="GuestPaths.SharedDirectory"/>). Each container's
/// rootfs and each of its bind-mount sources are bind-mounted below <c>&lt;share&gt;/&lt;container id&gt;/</c> when the
/// container is created; qemu serves the host's mount table as it is, so the guest sees them at once (the guest
/// mounts 9p without caching). Nothing but these binds is ever below the share.
/// </summary>
public sealed class MicroVmShare(string root)
{
    public string Root { get; } = root;

    public void Create() => Directory.CreateDirectory(Root);

    private string ContainerDirectory(string containerId) => Path.Combine(Root, containerId);

    /// <summary>Binds the container's rootfs (with what is mounted below it) where the guest expects it.</summary>
    public void ExposeRootfs(string containerId, string hostRootfs) =>
        Bind(hostRootfs, Path.Combine(ContainerDirectory(containerId), "rootfs"));

    /// <summary>Binds one mount source (a directory or a file) as the container's mount number <paramref name="index"/>.</summary>
    public void ExposeMount(string containerId, int index, string hostSource) =>
        Bind(hostSource, Path.Combine(ContainerDirectory(containerId), $"m{index}"));

    private static void Bind(string source, string target)
    {
        if (Directory.Exists(source)) Directory.CreateDirectory(target);
        else if (File.Exists(source))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using (File.Open(target, FileMode.OpenOrCreate)) { }
        }
        else throw new Core.HullException(Core.ErrorKind.InvalidArgument, $"mount source \"{source}\" does not exist");
        new Mount("bind", source, ["rbind"]).MountAt(target);
    }

    /// <summary>Unmounts and removes everything of one container; idempotent.</summary>
    public void RemoveContainer(string containerId)
    {
        var dir = ContainerDirectory(containerId);
        if (!Directory.Exists(dir)) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir)) Mounts.UnmountAll(entry, detach: true);
        // Deleting follows no mount: everything below was unmounted, and a failure here leaves the directory, not data.
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
        {
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: false);
            else File.Delete(entry);
        }
        Directory.Delete(dir);
    }

    /// <summary>Removes every container's binds and the share itself; idempotent.</summary>
    public void RemoveAll()
    {
        if (!Directory.Exists(Root)) return;
        foreach (var dir in Directory.EnumerateDirectories(Root)) RemoveContainer(Path.GetFileName(dir));
        Directory.Delete(Root);
    }
}
