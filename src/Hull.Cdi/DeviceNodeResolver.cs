using Hull.Linux;

namespace Hull.Cdi;

/// <summary>
/// Completes a spec's device node from the host node (the reference's DeviceNode.fillMissingInfo): the host path defaults to
/// the container path; a node that gives a type and a major number (or is a FIFO) needs no host node, anything else is read
/// from it with lstat. The file mode comes from the host node when the spec has none.
/// </summary>
public static class DeviceNodeResolver
{
    /// <summary>The permissions value that asks for a device cgroup rule without access.</summary>
    public const string NoPermissions = "none";

    /// <summary>Resolves <paramref name="node"/>; <paramref name="device"/> names the requested device in errors.</summary>
    public static CdiResolvedDeviceNode Resolve(CdiDeviceNode node, string device)
    {
        bool minimal = node.Type.Length > 0 && (node.Major != 0 || node.Type == "p");
        string hostPath = node.HostPath.Length > 0 ? node.HostPath : node.Path;
        string access = node.Permissions switch { "" => "rwm", NoPermissions => "", var p => p };
        var resolved = new CdiResolvedDeviceNode(node.Path, hostPath, node.Type, node.Major, node.Minor, node.FileMode, access, node.Uid, node.Gid);

        FileStatus? status;
        try
        {
            status = FileStatus.TryGet(hostPath);
        }
        catch (SyscallException e)
        {
            if (minimal) return resolved;
            throw new CdiException(CdiErrorKind.FailedPrecondition, $"CDI device \"{device}\": cannot stat host device \"{hostPath}\": {e.Message}", e);
        }
        string? hostType = status?.Type switch
        {
            UnixFileType.BlockDevice => "b",
            UnixFileType.CharacterDevice => "c",
            UnixFileType.Fifo => "p",
            _ => null,
        };
        if (status is not { } s || hostType is null)
        {
            // A vendor may describe a node completely; then the host node need not be there (yet).
            if (minimal) return resolved;
            throw new CdiException(CdiErrorKind.FailedPrecondition, status is null
                ? $"CDI device \"{device}\": host device \"{hostPath}\" (for \"{node.Path}\") does not exist"
                : $"CDI device \"{device}\": host path \"{hostPath}\" (for \"{node.Path}\") is not a device node");
        }

        resolved = resolved with { FileMode = node.FileMode ?? (uint)s.Permissions };
        if (minimal) return resolved;
        // "u" (unbuffered character device) is not what lstat reports, so asking for it needs a complete description.
        if (node.Type.Length > 0 && node.Type != hostType)
            throw new CdiException(CdiErrorKind.FailedPrecondition,
                $"CDI device \"{device}\": \"{node.Path}\" is of type \"{node.Type}\", but the host device \"{hostPath}\" is of type \"{hostType}\"");
        resolved = resolved with { Type = hostType };
        if (hostType == "p" || node.Major != 0) return resolved;
        return resolved with { Major = s.RdevMajor, Minor = s.RdevMinor };
    }
}
