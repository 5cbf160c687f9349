using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>
/// Terminals: pseudo-terminal pairs for exec sessions, window sizes (TIOCSWINSZ/TIOCGWINSZ), raw mode for hullctl.
/// </summary>
public static unsafe partial class Terminals
{
    private const ulong Tiocswinsz = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize
    {
        public ushort Rows, Columns, XPixels, YPixels;
    }

    /// <summary>Sets the window size of the terminal <paramref name="fd"/> refers to (master or slave).</summary>
    public static void SetWindowSize(SafeHandle fd, ushort rows, ushort columns)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            var size = new WinSize { Rows = rows, Columns = columns };
            if (ioctl((int)fd.DangerousGetHandle(), Tiocswinsz, &size) != 0) throw SyscallException.Last("ioctl(TIOCSWINSZ)", null);
        }
        finally
        {
            if (added) fd.DangerousRelease();
        }
    }

    /// <summary>The size of the terminal on <paramref name="fd"/> (columns, rows), or null when it is no terminal.</summary>
    public static (ushort Width, ushort Height)? TryGetWindowSize(int fd)
    {
        var size = new WinSize();
        if (ioctl(fd, Tiocgwinsz, &size) != 0 || size.Columns == 0) return null;
        return (size.Columns, size.Rows);
    }

    public static bool IsTerminal(int fd) => isatty(fd) == 1;

    /// <summary>Puts the terminal on <paramref name="fd"/> into raw mode (cfmakeraw); disposing the result restores it.</summary>
    public static IDisposable MakeRaw(int fd)
    {
        // struct termios is 60 bytes on glibc; opaque to us.
        var saved = new byte[128];
        fixed (byte* p = saved)
            if (tcgetattr(fd, p) != 0) throw SyscallException.Last("tcgetattr", null);
        var raw = (byte[])saved.Clone();
        fixed (byte* p = raw)
        {
            cfmakeraw(p);
            if (tcsetattr(fd, 0, p) != 0) throw SyscallException.Last("tcsetattr", null);
        }
        return new Restore(fd, saved);
    }

    private sealed class Restore(int fd, byte[] saved) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            fixed (byte* p = saved) tcsetattr(fd, 0, p);
        }
    }

    private const ulong Tiocgwinsz = 0x5413;

    /// <summary>
    /// A new pseudo-terminal pair (posix_openpt, unlockpt, open of the slave with O_NOCTTY), both close-on-exec.
    /// </summary>
    public static (SafeFileDescriptor Master, SafeFileDescriptor Slave) OpenPty()
    {
        const int ORdWr = 2, ONoCtty = 0x100, OCloexec = 0x80000;
        int master = posix_openpt(ORdWr | ONoCtty | OCloexec);
        if (master < 0) throw SyscallException.Last("posix_openpt", null);
        var masterHandle = new SafeFileDescriptor(master);
        try
        {
            if (grantpt(master) != 0) throw SyscallException.Last("grantpt", null);
            if (unlockpt(master) != 0) throw SyscallException.Last("unlockpt", null);
            byte* name = stackalloc byte[256];
            int error = ptsname_r(master, name, 256);
            if (error != 0) throw new SyscallException("ptsname_r", null, error);
            string path = Marshal.PtrToStringUTF8((nint)name)!;
            int slave = open(path, ORdWr | ONoCtty | OCloexec);
            if (slave < 0) throw SyscallException.Last("open", path);
            return (masterHandle, new SafeFileDescriptor(slave));
        }
        catch
        {
            masterHandle.Dispose();
            throw;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_openpt(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int grantpt(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlockpt(int fd);

    [LibraryImport("libc")]
    private static partial int ptsname_r(int fd, byte* buffer, nuint length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    /// <summary>An O_PATH descriptor of a directory, to reach a socket in it through /proc/self/fd when its path is too long for sun_path.</summary>
    public static SafeFileDescriptor OpenDirectoryPath(string path)
    {
        const int OPath = 0x200000, ODirectory = 0x10000, OCloexec = 0x80000;
        int fd = open(path, OPath | ODirectory | OCloexec);
        if (fd < 0) throw SyscallException.Last("open", path);
        return new SafeFileDescriptor(fd);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcgetattr(int fd, byte* termios);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcsetattr(int fd, int actions, byte* termios);

    [LibraryImport("libc")]
    private static partial void cfmakeraw(byte* termios);

    [LibraryImport("libc")]
    private static partial int isatty(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, void* argument);

}
