using Hull.Core;
using Hull.Linux;
using Hull.Runtime.Security;

namespace Hull.Runtime.Spec;

/// <summary>The spec's mounts and the root propagation they need.</summary>
public sealed record MountPlan(IReadOnlyList<OciMount> Mounts, string? RootfsPropagation);

/// <summary>
/// The container's mounts, in containerd's order (customopts.WithMounts): the default file systems, minus any a CRI
/// mount replaces (and all of /dev's when /dev itself is mounted); then the CRI mounts together with the pod's files
/// (/etc/hostname, /etc/hosts, /etc/resolv.conf, /dev/shm), the termination message file and the image's volumes,
/// sorted so that a mount never hides a deeper one.
/// </summary>
public static class ContainerMounts
{
    public const string EtcHostname = "/etc/hostname", EtcHosts = "/etc/hosts", ResolvConf = "/etc/resolv.conf", DevShm = "/dev/shm";

    /// <summary>
    /// The default file systems (containerd's pkg/oci defaultMounts without /run, plus the cgroup mount CRI adds):
    /// sysfs and cgroup are read-only unless the container is privileged.
    /// </summary>
    public static IReadOnlyList<OciMount> Defaults(bool privileged)
    {
        string sysMode = privileged ? "rw" : "ro";
        return
        [
            new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            new() { Destination = "/dev/pts", Type = "devpts", Source = "devpts", Options = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            new() { Destination = DevShm, Type = "tmpfs", Source = "shm", Options = ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            new() { Destination = "/dev/mqueue", Type = "mqueue", Source = "mqueue", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/sys", Type = "sysfs", Source = "sysfs", Options = ["nosuid", "noexec", "nodev", sysMode] },
            new() { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["nosuid", "noexec", "nodev", "relatime", sysMode] },
        ];
    }

    /// <summary>
    /// Whether "rro" (recursive read-only) can be honoured: Linux 5.12's mount_setattr. runc 1.1 does not know the option,
    /// so Hull makes such binds itself (<see cref="PreparedMounts"/>) and needs nothing of the OCI runtime.
    /// </summary>
    public static bool RecursiveReadOnlySupported(HostInfo host) => host.MountSetattr && host.Kernel >= new KernelVersion(5, 12);

    /// <summary>
    /// A pod with its own user namespace but the host's network cannot mount sysfs (the network namespace is not its
    /// user namespace's): it gets the host's /sys bound read-only all the way down instead, as containerd does.
    /// </summary>
    public static OciMount SysBind { get; } = new()
    {
        Destination = "/sys", Type = "bind", Source = "/sys", Options = ["rbind", "rro", "nosuid", "nodev", "noexec"],
    };

    public static MountPlan Plan(ContainerSpecRequest request, SpecBuilderOptions options, HostInfo host)
    {
        var container = request.Container;
        var security = container.Security;
        var criMounts = container.Mounts;
        foreach (var m in criMounts)
        {
            if (!m.ContainerPath.StartsWith('/'))
                throw new HullException(ErrorKind.InvalidArgument, $"mount container path \"{m.ContainerPath}\" is not absolute");
            if (m.Image is not null && !m.Readonly)
                throw new HullException(ErrorKind.InvalidArgument, $"image volume \"{m.Image}\" at \"{m.ContainerPath}\" must be read-only");
            if (!m.HostPath.StartsWith('/'))
                throw new HullException(ErrorKind.InvalidArgument, m.Image is null
                    ? $"mount host path \"{m.HostPath}\" (at \"{m.ContainerPath}\") is not absolute"
                    : $"image volume \"{m.Image}\" at \"{m.ContainerPath}\" was not mounted on the host");
            if (m.RecursiveReadOnly)
            {
                if (!m.Readonly)
                    throw new HullException(ErrorKind.InvalidArgument, $"mount at \"{m.ContainerPath}\" is recursive read-only but not read-only");
                if (m.Propagation != MountPropagation.Private)
                    throw new HullException(ErrorKind.InvalidArgument, $"mount at \"{m.ContainerPath}\" is recursive read-only, which needs private propagation");
                if (!RecursiveReadOnlySupported(host))
                    throw new HullException(ErrorKind.InvalidArgument,
                        $"mount at \"{m.ContainerPath}\" is recursive read-only, which this host does not support (it needs mount_setattr, Linux 5.12 or later; this is {host.Kernel})");
            }
        }
        var criDestinations = new HashSet<string>(criMounts.Select(m => Clean(m.ContainerPath)), StringComparer.Ordinal);
        bool InCri(string path) => criDestinations.Contains(Clean(path));

        var extra = new List<ContainerMount>();
        var sandbox = request.Sandbox;
        void AddPodFile(string containerPath, string? hostPath, bool readOnly)
        {
            // Like containerd, a pod file that does not exist on the host (a remote sandbox owns it) is left out.
            if (string.IsNullOrEmpty(hostPath) || InCri(containerPath) || FileStatus.TryGet(hostPath) is null) return;
            extra.Add(new ContainerMount { ContainerPath = containerPath, HostPath = hostPath, Readonly = readOnly });
        }
        AddPodFile(EtcHostname, sandbox.HostnamePath, security.ReadonlyRootfs);
        AddPodFile(EtcHosts, sandbox.HostsPath, security.ReadonlyRootfs);
        AddPodFile(ResolvConf, sandbox.ResolvConfPath, security.ReadonlyRootfs);
        AddPodFile(DevShm, sandbox.Ipc.Kind == NamespaceKind.Host ? DevShm : sandbox.ShmPath, readOnly: false);

        if (request.TerminationMessage is { } termination && !InCri(termination.ContainerPath))
        {
            EnsureFile(termination.HostPath);
            extra.Add(new ContainerMount { ContainerPath = termination.ContainerPath, HostPath = termination.HostPath });
        }

        extra.AddRange(ImageVolumes(request, options.ImageVolumes, InCri));

        // CRI mounts win over the extra ones at the same destination; then sort by depth (stable).
        var mounts = criMounts.Concat(extra.Where(e => !InCri(e.ContainerPath)))
            .OrderBy(m => Depth(m.ContainerPath))
            .ToList();

        var destinations = new HashSet<string>(mounts.Select(m => Clean(m.ContainerPath)), StringComparer.Ordinal);
        bool devMounted = destinations.Contains("/dev");
        var userns = sandbox.UserNamespace is { UidMappings.Count: > 0 } u ? u : null;
        var result = Defaults(security.Privileged)
            .Select(d => d.Destination == "/sys" && userns is not null && sandbox.Network.Kind == NamespaceKind.Host ? SysBind : d)
            .Where(d => !destinations.Contains(Clean(d.Destination)) && !(devMounted && d.Destination.StartsWith("/dev/", StringComparison.Ordinal)))
            .ToList();

        string? rootPropagation = null;
        IReadOnlyList<MountInfoEntry>? mountInfo = null;
        IReadOnlyList<MountInfoEntry> MountTable() => mountInfo ??= MountInfo.Parse(File.ReadAllText(options.MountInfoPath));

        foreach (var mount in mounts)
        {
            string source = PrepareSource(mount.HostPath);
            var mountOptions = new List<string> { "rbind" };
            switch (mount.Propagation)
            {
                case MountPropagation.Bidirectional:
                    if (MountInfo.Lookup(MountTable(), source) is { IsShared: false } notShared)
                        throw new HullException(ErrorKind.FailedPrecondition,
                            $"mount \"{mount.HostPath}\" (at \"{mount.ContainerPath}\") wants bidirectional propagation, but it is on \"{notShared.MountPoint}\", which is not a shared mount");
                    mountOptions.Add("rshared");
                    rootPropagation = "rshared";
                    break;
                case MountPropagation.HostToContainer:
                    if (MountInfo.Lookup(MountTable(), source) is { IsShared: false, IsSlave: false } privateMount)
                        throw new HullException(ErrorKind.FailedPrecondition,
                            $"mount \"{mount.HostPath}\" (at \"{mount.ContainerPath}\") wants host-to-container propagation, but it is on \"{privateMount.MountPoint}\", which is neither a shared nor a slave mount");
                    mountOptions.Add("rslave");
                    if (rootPropagation is not ("rshared" or "rslave")) rootPropagation = "rslave";
                    break;
                default:
                    mountOptions.Add("rprivate");
                    break;
            }

            if (mount.RecursiveReadOnly)
            {
                mountOptions.Add("rro");
            }
            else
            {
                // Like containerd (and unlike Docker), a read-only rootfs does not make the volumes read-only.
                mountOptions.Add(mount.Readonly ? "ro" : "rw");
            }

            // In a pod with its own user namespace every bind is idmapped (with its own mappings if it has them), so ids
            // on disk read the same inside as outside; a mount may also ask for its own idmapping in any pod.
            var uids = mount.UidMappings.Count > 0 ? mount.UidMappings : userns?.UidMappings;
            var gids = mount.GidMappings.Count > 0 ? mount.GidMappings : userns?.GidMappings;
            if ((uids is { Count: > 0 }) != (gids is { Count: > 0 }))
                throw new HullException(ErrorKind.InvalidArgument, $"mount at \"{mount.ContainerPath}\" has uid mappings or gid mappings but not both");
            result.Add(new OciMount
            {
                Destination = mount.ContainerPath, Type = "bind", Source = source, Options = mountOptions,
                UidMappings = uids is { Count: > 0 } ? uids : null, GidMappings = gids is { Count: > 0 } ? gids : null,
            });
        }
        return new MountPlan(result, rootPropagation);
    }

    /// <summary>
    /// Checks an image volume as the kubelet asks for it, before anything is made (containerd's mutateImageMount): it
    /// names no host path, is read-only, and its sub path, if any, is relative and stays inside the image.
    /// </summary>
    public static void ValidateImageVolume(ContainerMount mount, string containerName)
    {
        string what = $"image volume \"{mount.Image}\" at \"{mount.ContainerPath}\" of container \"{containerName}\"";
        if (string.IsNullOrEmpty(mount.Image))
            throw new HullException(ErrorKind.InvalidArgument, $"mount at \"{mount.ContainerPath}\" of container \"{containerName}\" names an image volume with no image");
        if (mount.HostPath.Length > 0)
            throw new HullException(ErrorKind.InvalidArgument, $"{what} also names host path \"{mount.HostPath}\"; an image volume has none");
        if (!mount.Readonly)
            throw new HullException(ErrorKind.InvalidArgument, $"{what} must be read-only (readonly = true)");
        if (mount.ImageSubPath is { Length: > 0 } sub && (sub.StartsWith('/') || sub.Split('/').Contains("..")))
            throw new HullException(ErrorKind.InvalidArgument, $"{what}: sub path \"{sub}\" must be relative and must not contain \"..\"");
    }

    /// <summary>
    /// The host directory an image volume mounts: <paramref name="imageRoot"/> (where the image's snapshot is mounted), or
    /// its sub path, resolved inside the image (symbolic links cannot leave it). A sub path that does not exist, or is
    /// not a directory, is InvalidArgument (as in containerd: only directories are mounted).
    /// </summary>
    public static string ImageVolumeSource(string imageRoot, ContainerMount mount, string containerName)
    {
        if (mount.ImageSubPath is not { Length: > 0 } sub) return imageRoot;
        string what = $"sub path \"{sub}\" of image volume \"{mount.Image}\" at \"{mount.ContainerPath}\" of container \"{containerName}\"";
        string resolved = RootfsPath.Resolve(imageRoot, sub)
            ?? throw new HullException(ErrorKind.InvalidArgument, $"{what} does not exist in the image");
        if (FileStatus.TryGet(resolved) is not { IsDirectory: true })
            throw new HullException(ErrorKind.InvalidArgument, $"{what} is not a directory; only directories can be mounted");
        return resolved;
    }

    /// <summary>Anonymous volumes of the image that no CRI mount covers: a fresh host directory each.</summary>
    private static IEnumerable<ContainerMount> ImageVolumes(ContainerSpecRequest request, ImageVolumeMode mode, Func<string, bool> inCri)
    {
        if (mode == ImageVolumeMode.Ignore || request.Image.Volumes.Count == 0) yield break;
        foreach (var volume in request.Image.Volumes.Distinct(StringComparer.Ordinal))
        {
            string destination = volume.StartsWith('/') ? volume : "/" + volume;
            if (inCri(destination)) continue;
            if (request.ContainerDirectory is null)
                throw new HullException(ErrorKind.InvalidArgument,
                    $"image \"{request.ImageName}\" declares volume \"{destination}\", but no container directory was given to hold it");
            string hostPath = Path.Join(request.ContainerDirectory, "volumes", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(hostPath);
            if (mode == ImageVolumeMode.Copy && RootfsPath.Resolve(request.RootfsPath, destination) is { } seed && FileStatus.TryGet(seed) is { IsDirectory: true } seedStatus)
            {
                CopyTree(seed, hostPath);
                File.SetUnixFileMode(hostPath, seedStatus.Permissions);
                FileNodes.SetOwner(hostPath, seedStatus.Uid, seedStatus.Gid);
            }
            yield return new ContainerMount { ContainerPath = destination, HostPath = hostPath };
        }
    }

    // containerd creates a missing host path as a directory, then mounts what the path resolves to.
    private static string PrepareSource(string hostPath)
    {
        if (FileStatus.TryGet(hostPath) is null && RootfsPath.Resolve("/", hostPath) is null)
        {
            try
            {
                Directory.CreateDirectory(hostPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                    UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HullException(ErrorKind.InvalidArgument, $"mount host path \"{hostPath}\" does not exist and cannot be created: {e.Message}", e);
            }
        }
        return RootfsPath.Resolve("/", hostPath) ?? hostPath;
    }

    private static void EnsureFile(string path)
    {
        if (FileStatus.TryGet(path) is not null) return;
        string? dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var _ = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write);
    }

    // Copies a directory of the image into a volume without following symlinks (they are copied as links).
    private static void CopyTree(string from, string to)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(from))
        {
            var status = FileStatus.TryGet(entry);
            if (status is null) continue;
            string target = Path.Join(to, Path.GetFileName(entry));
            switch (status.Value.Type)
            {
                case UnixFileType.Directory:
                    Directory.CreateDirectory(target, status.Value.Permissions);
                    CopyTree(entry, target);
                    break;
                case UnixFileType.Symlink:
                    File.CreateSymbolicLink(target, new FileInfo(entry).LinkTarget ?? "");
                    break;
                case UnixFileType.Regular:
                    File.Copy(entry, target);
                    File.SetUnixFileMode(target, status.Value.Permissions);
                    break;
                default:
                    continue;
            }
            FileNodes.SetOwner(target, status.Value.Uid, status.Value.Gid);
        }
    }

    /// <summary>How deep a mount point is ("/a/b" is 2): mounts are sorted by it (stably) so none hides a deeper one.</summary>
    public static int Depth(string containerPath) => Clean(containerPath).Count(c => c == '/');

    /// <summary>Lexical cleaning of a container path ("/a//b/./c/" is "/a/b/c"), as Go's filepath.Clean.</summary>
    public static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (var p in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (p == ".") continue;
            if (p == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return "/" + string.Join('/', parts);
    }
}
