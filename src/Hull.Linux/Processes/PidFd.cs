using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>
/// A pidfd (pidfd_open, Linux 5.3+): a handle on one process that cannot be confused with a later process that
/// reuses the pid. Signals sent through it reach the original process or fail with ESRCH; it polls readable once
/// the process has exited (even when it is not our child).
/// </summary>
public sealed partial class PidFd : IDisposable
{
    private const long SysPidfdOpen = 434, SysPidfdSendSignal = 424; // the same number on every architecture
    private const int ESRCH = 3;
    private const short PollIn = 0x001;

    private readonly SafeFileDescriptor _fd;

    private PidFd(int pid, SafeFileDescriptor fd)
    {
        Pid = pid;
        _fd = fd;
    }

    public int Pid { get; }

    /// <summary>Opens a pidfd; null when the process does not exist (a zombie still does).</summary>
    public static PidFd? TryOpen(int pid)
    {
        if (pid <= 0) return null;
        long fd = syscall(SysPidfdOpen, pid, 0, 0, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == ESRCH) return null;
            throw new SyscallException("pidfd_open", null, errno);
        }
        return new PidFd(pid, new SafeFileDescriptor((int)fd));
    }

    /// <summary>True once the process has exited (it may still be an unreaped zombie).</summary>
    public unsafe bool HasExited
    {
        get
        {
            bool added = false;
            _fd.DangerousAddRef(ref added);
            try
            {
                var poll = new PollFd { Fd = _fd.Fd, Events = PollIn };
                int result = Poll(&poll, 1, 0);
                if (result < 0) throw SyscallException.Last("poll(pidfd)", null);
                return result > 0 && (poll.Revents & PollIn) != 0;
            }
            finally
            {
                _fd.DangerousRelease();
            }
        }
    }

    /// <summary>Sends a signal to this very process; false when it has already exited.</summary>
    public bool TrySendSignal(int signal)
    {
        bool added = false;
        _fd.DangerousAddRef(ref added);
        try
        {
            if (syscall(SysPidfdSendSignal, _fd.Fd, signal, 0, 0) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == ESRCH) return false;
            throw new SyscallException("pidfd_send_signal", null, errno);
        }
        finally
        {
            _fd.DangerousRelease();
        }
    }

    /// <summary>Waits, polling, until the process has exited.</summary>
    public async Task WaitForExitAsync(CancellationToken cancellationToken = default)
    {
        var delay = TimeSpan.FromMilliseconds(2);
        while (!HasExited)
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            if (delay < TimeSpan.FromMilliseconds(100)) delay *= 2;
        }
    }

    public void Dispose() => _fd.Dispose();

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3, long a4);
}
