using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Hull.Linux;

/// <summary>How much of a bind is made read-only.</summary>
public enum BindReadOnly
{
    No,
    /// <summary>The top mount only, like <c>mount -o bind,ro</c> (submounts keep their own flags).</summary>
    Top,
    /// <summary>Every mount of the tree (Linux 5.12's recursive read-only, the OCI "rro" option).</summary>
    Recursive,
}

/// <summary>What a bind made with <see cref="MountTree.Bind"/> is.</summary>
public sealed record BindAttributes
{
    /// <summary>Clone the whole tree of mounts below the source (rbind), not just the top one.</summary>
    public bool Recursive { get; init; } = true;
    public BindReadOnly ReadOnly { get; init; }
    /// <summary>An idmapped bind: ids on disk are shown through this user namespace's mappings (every mount of the tree when <see cref="Recursive"/>).</summary>
    public SafeFileHandle? IdMapUserNamespace { get; init; }
}

/// <summary>
/// Binds made with the new mount API (Linux 5.2's open_tree and move_mount, 5.12's mount_setattr): the source is cloned
/// into a detached tree, its attributes (idmapping, read-only, recursively if asked) are set while nothing can see it,
/// and only then is it attached at the target. This is how idmapped and recursively read-only binds are made, which
/// mount(2) cannot do, and which runc 1.1 cannot be asked for: Hull makes them and hands runc the result as a plain bind.
/// </summary>
public static partial class MountTree
{
    // The same numbers on every architecture (the syscall table was unified at 424).
    private const long SysOpenTree = 428, SysMoveMount = 429, SysMountSetattr = 442;
    private const uint OpenTreeClone = 1, OpenTreeCloexec = 0x80000, AtRecursive = 0x8000, AtEmptyPath = 0x1000;
    private const uint MoveMountFEmptyPath = 0x4;
    private const int AtFdCwd = -100, ENOSYS = 38;
    private const ulong AttrReadOnly = 0x1, AttrIdMap = 0x100000;

    /// <summary>Whether this kernel has open_tree, move_mount and mount_setattr (Linux 5.12 or later).</summary>
    public static bool Supported { get; } = Probe();

    /// <summary>Binds <paramref name="source"/> (a directory or a file) on the existing <paramref name="target"/> with <paramref name="attributes"/>.</summary>
    /// <exception cref="SyscallException">Which call failed, on which path: mount_setattr fails with EINVAL when the file system cannot be idmapped.</exception>
    public static void Bind(string source, string target, BindAttributes attributes)
    {
        uint cloneFlags = OpenTreeClone | OpenTreeCloexec | (attributes.Recursive ? AtRecursive : 0);
        long fd = open_tree(AtFdCwd, source, cloneFlags);
        if (fd < 0) throw SyscallException.Last("open_tree", source);
        using var tree = new SafeFileHandle((nint)fd, ownsHandle: true);
        if (attributes.IdMapUserNamespace is { } userns)
        {
            bool added = false;
            userns.DangerousAddRef(ref added);
            try
            {
                SetAttributes(tree, source, AttrIdMap, (ulong)userns.DangerousGetHandle(), attributes.Recursive);
            }
            finally
            {
                if (added) userns.DangerousRelease();
            }
        }
        if (attributes.ReadOnly != BindReadOnly.No)
            SetAttributes(tree, source, AttrReadOnly, 0, attributes.ReadOnly == BindReadOnly.Recursive && attributes.Recursive);
        if (move_mount((int)tree.DangerousGetHandle(), "", AtFdCwd, target, MoveMountFEmptyPath) != 0)
            throw SyscallException.Last($"move_mount \"{source}\" to", target);
    }

    private static unsafe void SetAttributes(SafeFileHandle tree, string source, ulong set, ulong usernsFd, bool recursive)
    {
        // struct mount_attr { __u64 attr_set, attr_clr, propagation, userns_fd; }
        ulong* attr = stackalloc ulong[4];
        attr[0] = set;
        attr[1] = 0;
        attr[2] = 0;
        attr[3] = usernsFd;
        if (mount_setattr((int)tree.DangerousGetHandle(), "", AtEmptyPath | (recursive ? AtRecursive : 0), attr, 32) != 0)
            throw SyscallException.Last(set == AttrIdMap ? "mount_setattr (idmap)" : "mount_setattr (read-only)", source);
    }

    private static unsafe bool Probe()
    {
        // Bad arguments: a kernel that has the calls says EBADF (or EFAULT), one that lacks them ENOSYS.
        if (open_tree(-1, "", AtEmptyPath) >= 0 || Marshal.GetLastPInvokeError() == ENOSYS) return false;
        if (move_mount(-1, "", -1, "", MoveMountFEmptyPath) == 0 || Marshal.GetLastPInvokeError() == ENOSYS) return false;
        return mount_setattr(-1, "", AtEmptyPath, null, 32) != 0 && Marshal.GetLastPInvokeError() != ENOSYS;
    }

    private static long open_tree(int dirfd, string path, uint flags) => SyscallPath(SysOpenTree, dirfd, path, flags);

    private static long move_mount(int fromFd, string fromPath, int toFd, string toPath, uint flags) =>
        SyscallMove(SysMoveMount, fromFd, fromPath, toFd, toPath, flags);

    private static unsafe long mount_setattr(int fd, string path, uint flags, ulong* attr, nuint size) =>
        SyscallSetattr(SysMountSetattr, fd, path, flags, attr, size);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallPath(long number, int dirfd, string path, uint flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long SyscallMove(long number, int fromFd, string fromPath, int toFd, string toPath, uint flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial long SyscallSetattr(long number, int fd, string path, uint flags, ulong* attr, nuint size);
}
