using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>fsync of a directory, which .NET cannot open: makes a rename or a new entry in it durable.</summary>
public static partial class FileSync
{
    private const int ORdOnly = 0, OCloexec = 0x80000;

    public static void SyncDirectory(string path)
    {
        int fd = open(path, ORdOnly | OCloexec);
        if (fd < 0) throw SyscallException.Last("open", path);
        try
        {
            if (fsync(fd) != 0) throw SyscallException.Last("fsync", path);
        }
        finally
        {
            close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
