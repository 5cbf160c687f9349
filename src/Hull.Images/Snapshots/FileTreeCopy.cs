using Hull.Linux;

namespace Hull.Images.Snapshots;

/// <summary>
/// Copies a directory tree exactly, never following symlinks: contents, modes incl. setuid, owners,
/// xattrs, nanosecond times, devices, fifos and hard links (kept as links). What the native
/// snapshotter uses to give each snapshot its own copy of the parent (containerd's fs.CopyDir).
/// </summary>
internal static class FileTreeCopy
{
    public static void CopyDirectory(string source, string target)
    {
        var links = new Dictionary<(uint, uint, ulong), string>();
        var root = FileStatus.Get(source);
        if (!root.IsDirectory) throw new IOException($"\"{source}\" is not a directory");
        CopyDirectory(source, target, root, links);
    }

    private static void CopyDirectory(string source, string target, FileStatus status, Dictionary<(uint, uint, ulong), string> links)
    {
        Directory.CreateDirectory(target);
        foreach (var child in Directory.EnumerateFileSystemEntries(source))
        {
            string to = Path.Combine(target, Path.GetFileName(child));
            var childStatus = FileStatus.Get(child);
            if (childStatus.IsDirectory)
            {
                CopyDirectory(child, to, childStatus, links);
                continue;
            }
            if (childStatus.LinkCount > 1 && childStatus.Type != UnixFileType.Directory)
            {
                var inode = (childStatus.DeviceMajor, childStatus.DeviceMinor, childStatus.Inode);
                if (links.TryGetValue(inode, out var first))
                {
                    FileNodes.CreateHardLink(first, to);
                    continue;
                }
                links[inode] = to;
            }
            CopyNode(child, to, childStatus);
        }
        // Last, so creating the children does not bump the copied mtime.
        CopyMetadata(source, target, status);
    }

    /// <summary>Copies one non-directory (regular file, symlink, device, fifo) with its metadata; sockets are skipped.</summary>
    public static void CopyNode(string source, string target, FileStatus status)
    {
        switch (status.Type)
        {
            case UnixFileType.Regular:
                File.Copy(source, target); // reflink or copy_file_range where the file system can
                break;
            case UnixFileType.Symlink:
                File.CreateSymbolicLink(target, new FileInfo(source).LinkTarget!);
                break;
            case UnixFileType.CharacterDevice:
                FileNodes.CreateCharacterDevice(target, status.Permissions, status.RdevMajor, status.RdevMinor);
                break;
            case UnixFileType.BlockDevice:
                FileNodes.CreateBlockDevice(target, status.Permissions, status.RdevMajor, status.RdevMinor);
                break;
            case UnixFileType.Fifo:
                FileNodes.CreateFifo(target, status.Permissions);
                break;
            default:
                return; // a socket belongs to a process, not to an image
        }
        CopyMetadata(source, target, status);
    }

    /// <summary>Owner, then xattrs, then mode (chown clears setuid and file capabilities), then times.</summary>
    public static void CopyMetadata(string source, string target, FileStatus status)
    {
        FileNodes.SetOwner(target, status.Uid, status.Gid);
        foreach (var name in ExtendedAttributes.List(source))
        {
            if (ExtendedAttributes.TryGet(source, name) is not { } value) continue;
            try
            {
                ExtendedAttributes.Set(target, name, value);
            }
            catch (SyscallException e) when (e.Errno == Errno.EOPNOTSUPP)
            {
                // The target file system does not take this namespace (e.g. security.selinux); containerd skips these too.
            }
        }
        if (!status.IsSymlink) File.SetUnixFileMode(target, status.Permissions);
        FileNodes.SetTimes(target, status.AtimeSeconds, status.AtimeNanoseconds, status.MtimeSeconds, status.MtimeNanoseconds);
    }
}
