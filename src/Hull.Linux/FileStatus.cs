using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>What lstat reports about a path (the link itself, never its target).</summary>
public readonly record struct FileStatus(
    UnixFileType Type,
    UnixFileMode Permissions,
    uint Uid,
    uint Gid,
    long Size,
    long Blocks,
    ulong Inode,
    uint DeviceMajor,
    uint DeviceMinor,
    uint RdevMajor,
    uint RdevMinor,
    uint LinkCount,
    long AtimeSeconds,
    uint AtimeNanoseconds,
    long MtimeSeconds,
    uint MtimeNanoseconds)
{
    public bool IsDirectory => Type == UnixFileType.Directory;
    public bool IsSymlink => Type == UnixFileType.Symlink;

    /// <summary>lstat(2) through statx, whose struct layout is the same on every architecture. Null when the path does not exist.</summary>
    public static FileStatus? TryGet(string path)
    {
        if (NativeStat.statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var s) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.ENOENT or Errno.ENOTDIR) return null;
            throw new SyscallException("statx", path, errno);
        }
        return new FileStatus(TypeOf(s.Mode), (UnixFileMode)(s.Mode & 0xFFF), s.Uid, s.Gid, (long)s.Size, (long)s.Blocks, s.Ino,
            s.DevMajor, s.DevMinor, s.RdevMajor, s.RdevMinor, s.Nlink, s.AtimeSec, s.AtimeNsec, s.MtimeSec, s.MtimeNsec);
    }

    public static FileStatus Get(string path) =>
        TryGet(path) ?? throw new SyscallException("statx", path, Errno.ENOENT);

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    private static UnixFileType TypeOf(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => UnixFileType.Regular,
        0x4000 => UnixFileType.Directory,
        0xA000 => UnixFileType.Symlink,
        0x2000 => UnixFileType.CharacterDevice,
        0x6000 => UnixFileType.BlockDevice,
        0x1000 => UnixFileType.Fifo,
        0xC000 => UnixFileType.Socket,
        _ => UnixFileType.Unknown,
    };
}

public enum UnixFileType { Unknown, Regular, Directory, Symlink, CharacterDevice, BlockDevice, Fifo, Socket }

[StructLayout(LayoutKind.Sequential)]
internal struct Statx
{
    public uint Mask;
    public uint Blksize;
    public ulong Attributes;
    public uint Nlink;
    public uint Uid;
    public uint Gid;
    public ushort Mode;
    private ushort _spare0;
    public ulong Ino;
    public ulong Size;
    public ulong Blocks;
    public ulong AttributesMask;
    public long AtimeSec; public uint AtimeNsec; private int _atimeReserved;
    public long BtimeSec; public uint BtimeNsec; private int _btimeReserved;
    public long CtimeSec; public uint CtimeNsec; private int _ctimeReserved;
    public long MtimeSec; public uint MtimeNsec; private int _mtimeReserved;
    public uint RdevMajor;
    public uint RdevMinor;
    public uint DevMajor;
    public uint DevMinor;
    private unsafe fixed ulong _spare[14]; // the kernel's struct is 256 bytes
}

internal static partial class NativeStat
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statx(int dirfd, string path, int flags, uint mask, out Statx buffer);
}
