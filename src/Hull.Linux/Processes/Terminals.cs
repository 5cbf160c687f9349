using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>
/// Pseudo-terminals of exec sessions: receiving the pty master that <c>runc --console-socket</c> sends (SCM_RIGHTS)
/// and setting a terminal's window size (TIOCSWINSZ).
/// </summary>
public static unsafe partial class Terminals
{
    private const int SolSocket = 1, ScmRights = 1, MsgCmsgCloexec = 0x40000000, EINTR = 4;
    private const ulong Tiocswinsz = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize
    {
        public ushort Rows, Columns, XPixels, YPixels;
    }

    /// <summary>
    /// Blocks until one message with a descriptor arrives on <paramref name="socket"/> (a connected unix stream socket)
    /// and returns the descriptor (close-on-exec). Throws when the peer closes without sending one.
    /// </summary>
    public static SafeFileDescriptor ReceiveDescriptor(Socket socket)
    {
        byte* data = stackalloc byte[4096];
        // CMSG_SPACE(sizeof(int)) = 24 on 64-bit; room for a few in case the sender passes more.
        const int controlSize = 64;
        byte* control = stackalloc byte[controlSize];
        var iov = new IoVec { Base = data, Length = 4096 };
        var header = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = controlSize };
        long received;
        do received = recvmsg((int)socket.Handle, &header, MsgCmsgCloexec);
        while (received < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (received < 0) throw SyscallException.Last("recvmsg", null);
        // struct cmsghdr { size_t len; int level; int type; unsigned char data[]; }
        if (header.ControlLength >= 20)
        {
            nuint length = *(nuint*)control;
            int level = *(int*)(control + 8), type = *(int*)(control + 12);
            if (level == SolSocket && type == ScmRights && length >= 20)
            {
                int fd = *(int*)(control + 16);
                int count = (int)((length - 16) / 4);
                for (int i = 1; i < count; i++) close(*(int*)(control + 16 + 4 * i));
                return new SafeFileDescriptor(fd);
            }
        }
        throw new IOException(received == 0 ? "the console socket was closed before a terminal was sent" : "the console socket message carried no descriptor");
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

    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcgetattr(int fd, byte* termios);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int tcsetattr(int fd, int actions, byte* termios);

    [LibraryImport("libc")]
    private static partial void cfmakeraw(byte* termios);

    [LibraryImport("libc")]
    private static partial int isatty(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, void* argument);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
