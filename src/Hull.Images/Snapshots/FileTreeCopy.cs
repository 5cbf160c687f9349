using Hull.Linux;

namespace Hull.Images.Snapshots;

/// <summary>
/// Copies a directory tree exactly, never following symlinks: contents, modes incl. setuid, owners,
/// xattrs, nanosecond times, devices, fifos and hard links (kept as links). What the native
/// snapshotter uses to give each snapshot its own copy of the parent (containerd's fs.CopyDir).
/// </summary>
internal static class FileTreeCopy
{
    /// <param name="shift">Owners as a mapped root sees them (a chown copy for a user namespace); null copies them as they are.</param>
    public static void CopyDirectory(string source, string target, IdShift? shift = null)
    {
        var links = new Dictionary<(uint, uint, ulong), string>();
        var root = FileStatus.Get(source);
        if (!root.IsDirectory) throw new IOException($"\"{source}\" is not a directory");
        CopyDirectory(source, target, root, links, shift);
    }

    private static void CopyDirectory(string source, string target, FileStatus status, Dictionary<(uint, uint, ulong), string> links, IdShift? shift)
    {
        Directory.CreateDirectory(target);
        foreach (var child in Directory.EnumerateFileSystemEntries(source))
        {
            string to = Path.Combine(target, Path.GetFileName(child));
            var childStatus = FileStatus.Get(child);
            if (childStatus.IsDirectory)
            {
                CopyDirectory(child, to, childStatus, links, shift);
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
            CopyNode(child, to, childStatus, shift);
        }
        // Last, so creating the children does not bump the copied mtime.
        CopyMetadata(source, target, status, shift);
    }

    /// <summary>Copies one non-directory (regular file, symlink, device, fifo) with its metadata; sockets are skipped.</summary>
    public static void CopyNode(string source, string target, FileStatus status, IdShift? shift = null)
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
        CopyMetadata(source, target, status, shift);
    }

    /// <summary>Owner, then xattrs, then mode (chown clears setuid and file capabilities), then times.</summary>
    public static void CopyMetadata(string source, string target, FileStatus status, IdShift? shift = null)
    {
        FileNodes.SetOwner(target, shift?.Uid(status.Uid) ?? status.Uid, shift?.Gid(status.Gid) ?? status.Gid);
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
