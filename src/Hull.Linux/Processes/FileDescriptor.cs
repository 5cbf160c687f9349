using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>A raw file descriptor owned by a SafeHandle (closed on dispose), for the descriptors .NET has no type for.</summary>
public sealed partial class SafeFileDescriptor : SafeHandle
{
    public SafeFileDescriptor(int fd, bool ownsHandle = true) : base(-1, ownsHandle) => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    /// <summary>The descriptor number; valid while this handle is alive.</summary>
    public int Fd => (int)handle;

    /// <summary>Hands the descriptor to a <see cref="Socket"/> (which then owns it); this handle becomes invalid.</summary>
    public Socket ToSocket()
    {
        int fd = Fd;
        SetHandleAsInvalid();
        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    protected override bool ReleaseHandle() => close((int)handle) == 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}

/// <summary>Descriptors for talking to child processes: socket pairs (what CRI-O gives conmon as its sync and start
/// "pipes") and non-blocking opens of FIFOs whose reader may be gone.</summary>
public static partial class Descriptors
{
    private const int AfUnix = 1, SockStream = 1, SockCloexec = 0x80000;
    private const int OWrOnly = 1, ONonBlock = 0x800, OCloexec = 0x80000;
    private const int ENXIO = 6;

    /// <summary>socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): both ends close on exec, so no other child inherits them
    /// by accident; <see cref="ProcessSpawner"/> hands one end to exactly one child.</summary>
    public static unsafe (SafeFileDescriptor First, SafeFileDescriptor Second) CreateSocketPair()
    {
        int* fds = stackalloc int[2];
        if (socketpair(AfUnix, SockStream | SockCloexec, 0, fds) != 0) throw SyscallException.Last("socketpair", null);
        return (new SafeFileDescriptor(fds[0]), new SafeFileDescriptor(fds[1]));
    }

    /// <summary>
    /// Opens a FIFO for writing without blocking: a plain open blocks until a reader appears, forever if the reader
    /// (conmon) is dead. Returns null when nobody has the FIFO open for reading (ENXIO) or it does not exist.
    /// </summary>
    public static FileStream? TryOpenFifoForWrite(string path)
    {
        int fd = open(path, OWrOnly | ONonBlock | OCloexec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.ENOENT or ENXIO) return null;
            throw new SyscallException("open", path, errno);
        }
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
    }

    /// <summary>Reads a child's end of a socket pair until EOF (every copy closed), keeping the first <paramref name="max"/> bytes as UTF-8.</summary>
    public static async Task<string> ReadAllAsync(Socket socket, int max)
    {
        var output = new MemoryStream();
        var chunk = new byte[4096];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(chunk, SocketFlags.None).ConfigureAwait(false)) > 0)
                if (output.Length < max) output.Write(chunk, 0, (int)Math.Min(read, max - output.Length));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        return System.Text.Encoding.UTF8.GetString(output.ToArray());
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
}
