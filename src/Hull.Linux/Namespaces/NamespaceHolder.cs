using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Hull.Linux.Processes;
using Microsoft.Win32.SafeHandles;

namespace Hull.Linux.Namespaces;

/// <summary>One line of a uid_map or gid_map: ids <see cref="ContainerId"/>… inside are <see cref="HostId"/>… outside, <see cref="Size"/> of them.</summary>
public readonly record struct IdMapping(uint ContainerId, uint HostId, uint Size)
{
    /// <summary>containerd's mount-option form, <c>container:host:size</c>.</summary>
    public override string ToString() => $"{ContainerId}:{HostId}:{Size}";

    /// <summary>Parses <c>container:host:size</c>; null when it is not three unsigned numbers.</summary>
    public static IdMapping? TryParse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 3) return null;
        uint[] n = new uint[3];
        for (int i = 0; i < 3; i++)
            if (!uint.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out n[i])) return null;
        return new IdMapping(n[0], n[1], n[2]);
    }

    /// <summary>The host id of <paramref name="containerId"/>, or null when this line does not map it.</summary>
    public uint? ToHost(uint containerId) =>
        containerId >= ContainerId && (ulong)containerId - ContainerId < Size ? HostId + (containerId - ContainerId) : null;
}

/// <summary>
/// A process that exists only to hold new namespaces: a new user namespace with the given mappings and, created with it
/// (so owned by it), the network, IPC and UTS namespaces asked for. While it lives, <see cref="PathOf"/> names them, for
/// pinning with a bind mount or for opening; disposing it kills it.
/// </summary>
/// <remarks>
/// A multithreaded process cannot unshare(CLONE_NEWUSER) or setns into a user namespace, so a child must make it. The
/// child is a clone(2) of hulld that only pauses, on a stack of its own: it never returns into the runtime. On x86-64 it
/// shares hulld's memory (CLONE_VM): a copy of hulld's page tables costs 5-10 ms to make and as much to free at the kill,
/// on every pod start. Sharing, it must touch nothing of the thread that cloned it, so it runs the pause system call
/// through libc's syscall() (pure register moves; libc's pause() would mark that thread's cancellation state), and its
/// stack is freed only once it is reaped. Elsewhere (no pause system call to name alone) it is a copy running pause(). Its name (what the calling thread's was, which is set for the call) is <see cref="ProcessName"/>,
/// so <see cref="KillOrphans"/> can find one left by a hulld killed in the few milliseconds it lives.
/// </remarks>
public sealed partial class NamespaceHolder : IDisposable
{
    /// <summary>The holder's comm (/proc/&lt;pid&gt;/comm).</summary>
    public const string ProcessName = "hull-userns";

    private const int CloneNewUser = 0x10000000, SigChld = 17, PrSetName = 15, PrGetName = 16, StackSize = 64 * 1024;
    private static readonly byte[] NameBytes = Encoding.ASCII.GetBytes(ProcessName + "\0");
    private const int CloneVm = 0x100, SysPauseX64 = 34;
    private static readonly bool SharesMemory = RuntimeInformation.ProcessArchitecture == Architecture.X64;
    private static readonly Lazy<nint> Libc = new(() => NativeLibrary.Load("libc.so.6"));
    private static readonly Lazy<nint> Pause = new(() => NativeLibrary.GetExport(Libc.Value, "pause"));
    private static readonly Lazy<nint> Syscall = new(() => NativeLibrary.GetExport(Libc.Value, "syscall"));
    private int _pid;
    /// <summary>The child's stack while it shares this process's memory (freed once it is reaped), else zero.</summary>
    private nint _sharedStack;

    private NamespaceHolder(int pid, nint sharedStack) => (_pid, _sharedStack) = (pid, sharedStack);

    public int Pid => _pid;

    /// <summary>Starts a holder of a new user namespace with exactly these mappings, plus <paramref name="owned"/> namespaces it owns.</summary>
    /// <exception cref="IOException">clone or writing a map failed (the process is gone then).</exception>
    public static unsafe NamespaceHolder Start(IReadOnlyList<IdMapping> uids, IReadOnlyList<IdMapping> gids, NamespaceTypes owned = NamespaceTypes.None)
    {
        if (uids.Count == 0 || gids.Count == 0) throw new ArgumentException("a user namespace needs uid and gid mappings");
        byte* stack = (byte*)NativeMemory.AlignedAlloc(StackSize, 16);
        byte* oldName = stackalloc byte[16];
        int pid = -1;
        try
        {
            prctl(PrGetName, (nint)oldName);
            fixed (byte* name = NameBytes) prctl(PrSetName, (nint)name);
            int flags = CloneNewUser | (int)owned | SigChld;
            pid = SharesMemory
                ? clone(Syscall.Value, (nint)(stack + StackSize), flags | CloneVm, SysPauseX64)
                : clone(Pause.Value, (nint)(stack + StackSize), flags, 0);
            int errno = Marshal.GetLastPInvokeError();
            prctl(PrSetName, (nint)oldName);
            if (pid < 0) throw new SyscallException($"clone({owned | NamespaceTypes.User})", null, errno);
        }
        finally
        {
            if (!SharesMemory || pid < 0) NativeMemory.AlignedFree(stack); // else the child runs on it; freed after the reap
        }
        var holder = new NamespaceHolder(pid, SharesMemory ? (nint)stack : 0);
        try
        {
            // gid_map first is not required for a writer with CAP_SETGID outside; either order works.
            WriteMap($"/proc/{pid}/uid_map", uids);
            WriteMap($"/proc/{pid}/gid_map", gids);
        }
        catch
        {
            holder.Dispose();
            throw;
        }
        return holder;
    }

    /// <summary>/proc/&lt;pid&gt;/ns/&lt;kind&gt; of the holder.</summary>
    public string PathOf(NamespaceTypes type) => $"/proc/{Pid}/ns/{LinuxNamespaces.ProcName(type)}";

    /// <summary>A descriptor of the user namespace that outlives the holder (for idmapped mounts).</summary>
    public SafeFileHandle OpenUserNamespace() => LinuxNamespaces.Open(PathOf(NamespaceTypes.User));

    /// <summary>Kills and reaps the holder; the namespaces live on where something pins or holds them.</summary>
    public void Dispose()
    {
        int pid = Interlocked.Exchange(ref _pid, 0);
        if (pid <= 0) return;
        Signals.TrySend(pid, Signals.SIGKILL);
        // Dead at once: SIGKILL cannot be caught, and the holder only sleeps.
        while (waitpid(pid, out _, 0) < 0 && Marshal.GetLastPInvokeError() == Eintr) { }
        FreeSharedStack();
    }

    private unsafe void FreeSharedStack()
    {
        nint stack = Interlocked.Exchange(ref _sharedStack, 0);
        if (stack != 0) NativeMemory.AlignedFree((void*)stack);
    }

    private const int Eintr = 4;

    /// <summary>
    /// Kills holders another hulld (this binary, a previous run) left behind when it was killed while one lived: processes
    /// named <see cref="ProcessName"/>, running this executable, that are not this process's children. Returns their pids.
    /// </summary>
    public static IReadOnlyList<int> KillOrphans()
    {
        var killed = new List<int>();
        string self = Readlink("/proc/self/exe") ?? "";
        int me = Environment.ProcessId;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid == me) continue;
            if (ProcessInfo.TryRead(pid) is not { } info || info.Command != ProcessName || info.ParentPid == me) continue;
            if (Readlink($"/proc/{pid}/exe") != self) continue;
            if (Signals.TrySend(pid, Signals.SIGKILL)) killed.Add(pid);
        }
        return killed;
    }

    private static string? Readlink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A map is written once, whole, in one write(2).</summary>
    private static void WriteMap(string path, IReadOnlyList<IdMapping> mappings)
    {
        var text = new StringBuilder();
        foreach (var m in mappings) text.Append(CultureInfo.InvariantCulture, $"{m.ContainerId} {m.HostId} {m.Size}\n");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(Encoding.ASCII.GetBytes(text.ToString()));
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int clone(nint fn, nint stack, int flags, nint arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nint arg2);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);
}
