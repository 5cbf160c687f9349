using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>Creating and changing file system nodes without following symbolic links (what unpacking a layer needs).</summary>
public static partial class FileNodes
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint SIfChr = 0x2000, SIfBlk = 0x6000, SIfIfo = 0x1000;

    /// <summary>The glibc encoding of a device number (gnu_dev_makedev).</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) |
        ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    public static void CreateCharacterDevice(string path, UnixFileMode permissions, uint major, uint minor) =>
        Mknod(path, SIfChr | (uint)permissions, MakeDevice(major, minor));

    public static void CreateBlockDevice(string path, UnixFileMode permissions, uint major, uint minor) =>
        Mknod(path, SIfBlk | (uint)permissions, MakeDevice(major, minor));

    public static void CreateFifo(string path, UnixFileMode permissions) => Mknod(path, SIfIfo | (uint)permissions, 0);

    private static void Mknod(string path, uint mode, ulong device)
    {
        if (mknod(path, mode, device) != 0) throw SyscallException.Last("mknod", path);
    }

    /// <summary>link(2): a hard link; a symlink at <paramref name="existing"/> is linked itself, not followed.</summary>
    public static void CreateHardLink(string existing, string path)
    {
        if (link(existing, path) != 0) throw SyscallException.Last($"link to \"{existing}\"", path);
    }

    /// <summary>lchown(2): changes the owner of a symlink itself rather than its target.</summary>
    public static void SetOwner(string path, uint uid, uint gid)
    {
        if (lchown(path, uid, gid) != 0) throw SyscallException.Last("lchown", path);
    }

    /// <summary>utimensat(2) with AT_SYMLINK_NOFOLLOW: sets the times of a symlink itself, with nanoseconds.</summary>
    public static void SetTimes(string path, long atimeSeconds, long atimeNanoseconds, long mtimeSeconds, long mtimeNanoseconds)
    {
        Span<Timespec> times = [new(atimeSeconds, atimeNanoseconds), new(mtimeSeconds, mtimeNanoseconds)];
        if (utimensat(AtFdCwd, path, times, AtSymlinkNoFollow) != 0) throw SyscallException.Last("utimensat", path);
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Timespec(long Seconds, long Nanoseconds);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mknod(string path, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldpath, string newpath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int utimensat(int dirfd, string path, ReadOnlySpan<Timespec> times, int flags);
}
