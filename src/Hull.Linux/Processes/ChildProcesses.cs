using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>How a process ended, decoded from a wait status the way shells and conmon report it.</summary>
public readonly record struct ExitStatus(int Code, int? Signal)
{
    /// <summary>WIFEXITED → the exit code; WIFSIGNALED → 128 + signal (137 for SIGKILL).</summary>
    public static ExitStatus FromWaitStatus(int status)
    {
        int termsig = status & 0x7f;
        if (termsig == 0) return new ExitStatus((status >> 8) & 0xff, null);
        return new ExitStatus(128 + termsig, termsig);
    }
}

/// <summary>
/// Reaping children started with <see cref="ProcessSpawner"/> (the .NET runtime reaps only the children it started
/// itself). Waiting polls waitpid(WNOHANG) with a short, growing delay, so no thread is blocked.
/// </summary>
public static partial class ChildProcesses
{
    private const int WNoHang = 1, EINTR = 4, ECHILD = 10;

    /// <summary>Reaps <paramref name="pid"/> if it has exited; false while it still runs.</summary>
    public static bool TryReap(int pid, out ExitStatus status)
    {
        while (true)
        {
            int raw;
            int result = waitpid(pid, out raw, WNoHang);
            if (result == pid)
            {
                status = ExitStatus.FromWaitStatus(raw);
                return true;
            }
            if (result == 0)
            {
                status = default;
                return false;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            if (errno == ECHILD) throw new InvalidOperationException($"process {pid} is not a child of this process or was already reaped");
            throw new SyscallException("waitpid", null, errno);
        }
    }

    /// <summary>Waits for a child to exit and reaps it. Cancelling leaves the child running and unreaped.</summary>
    public static async Task<ExitStatus> WaitForExitAsync(int pid, CancellationToken cancellationToken = default)
    {
        var delay = TimeSpan.FromMilliseconds(1);
        while (true)
        {
            if (TryReap(pid, out var status)) return status;
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            if (delay < TimeSpan.FromMilliseconds(50)) delay *= 2;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);
}
