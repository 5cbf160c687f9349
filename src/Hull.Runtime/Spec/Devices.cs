using Hull.Core;
using Hull.Linux;

namespace Hull.Runtime.Spec;

/// <summary>A device node for the spec plus the device cgroup rule that lets the container use it.</summary>
public sealed record DeviceGrant(OciDevice Device, OciDeviceCgroup Rule);

/// <summary>Host device nodes as spec devices (containerd's oci.getDevices and DeviceFromPath).</summary>
public static class Devices
{
    /// <summary>Directories a /dev walk skips (they are mounted separately or are not devices).</summary>
    private static readonly HashSet<string> SkippedDirectories = new(StringComparer.Ordinal) { "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev" };

    /// <summary>
    /// A CRI device: the host path (symlinks resolved; a directory adds every device under it) at the container
    /// path, with a cgroup rule granting <see cref="ContainerDevice.Permissions"/>. A host path that does not exist,
    /// or is not a device, is an InvalidArgument error naming it.
    /// </summary>
    public static IReadOnlyList<DeviceGrant> ForContainerDevice(ContainerDevice device)
    {
        string access = string.IsNullOrEmpty(device.Permissions) ? "rwm" : device.Permissions;
        if (access.Any(c => c is not ('r' or 'w' or 'm')))
            throw new HullException(ErrorKind.InvalidArgument, $"device \"{device.HostPath}\" has invalid permissions \"{device.Permissions}\" (expected a combination of r, w, m)");
        if (!device.ContainerPath.StartsWith('/'))
            throw new HullException(ErrorKind.InvalidArgument, $"device container path \"{device.ContainerPath}\" is not absolute");
        string resolved;
        try
        {
            resolved = ResolveSymlinks(device.HostPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"device \"{device.HostPath}\" cannot be resolved: {e.Message}", e);
        }
        var status = FileStatus.TryGet(resolved)
            ?? throw new HullException(ErrorKind.InvalidArgument, $"device \"{device.HostPath}\" does not exist on the host");
        IReadOnlyList<OciDevice> nodes;
        if (status.IsDirectory)
        {
            nodes = Walk(resolved, device.ContainerPath);
        }
        else
        {
            var node = FromPath(resolved)
                ?? throw new HullException(ErrorKind.InvalidArgument, $"\"{device.HostPath}\" is not a device node (container path \"{device.ContainerPath}\")");
            nodes = [node with { Path = device.ContainerPath }];
        }
        return nodes.Select(n => Grant(n, access)).ToArray();
    }

    /// <summary>A device node with the cgroup rule allowing <paramref name="access"/> to exactly that node.</summary>
    public static DeviceGrant Grant(OciDevice node, string access) =>
        new(node, new OciDeviceCgroup { Allow = true, Type = node.Type, Major = node.Major, Minor = node.Minor, Access = access });

    /// <summary>Every character and block device under <paramref name="devDirectory"/> (privileged containers), at the same paths.</summary>
    public static IReadOnlyList<OciDevice> HostDevices(string devDirectory = "/dev") => Walk(devDirectory, null);

    /// <summary>The device at <paramref name="path"/> (not following a final symlink), or null when it is not a character or block device.</summary>
    public static OciDevice? FromPath(string path)
    {
        var s = FileStatus.TryGet(path);
        if (s is null) return null;
        string? type = s.Value.Type switch
        {
            UnixFileType.CharacterDevice => "c",
            UnixFileType.BlockDevice => "b",
            _ => null,
        };
        if (type is null) return null;
        return new OciDevice
        {
            Type = type,
            Path = path,
            Major = s.Value.RdevMajor,
            Minor = s.Value.RdevMinor,
            FileMode = (uint)s.Value.Permissions,
            Uid = s.Value.Uid,
            Gid = s.Value.Gid,
        };
    }

    private static List<OciDevice> Walk(string directory, string? containerPath)
    {
        var result = new List<OciDevice>();
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(directory).Order(StringComparer.Ordinal).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"cannot list devices in \"{directory}\": {e.Message}", e);
        }
        foreach (var entry in entries)
        {
            string name = Path.GetFileName(entry);
            var status = FileStatus.TryGet(entry);
            if (status is null) continue; // gone while walking
            string? target = containerPath is null ? null : Path.Join(containerPath, name);
            if (status.Value.IsDirectory)
            {
                if (SkippedDirectories.Contains(name)) continue;
                result.AddRange(Walk(entry, target));
                continue;
            }
            if (name == "console") continue;
            var device = FromPath(entry);
            if (device is null) continue;
            result.Add(target is null ? device : device with { Path = target });
        }
        return result;
    }

    // realpath(3): every symlink on the way resolved; a missing path resolves to itself so lstat reports it.
    private static string ResolveSymlinks(string path) => RootfsPath.Resolve("/", Path.GetFullPath(path)) ?? path;
}
