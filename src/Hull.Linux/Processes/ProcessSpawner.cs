using System.Runtime.InteropServices;
using System.Text;

namespace Hull.Linux.Processes;

/// <summary>What to start with <see cref="ProcessSpawner.Spawn"/>.</summary>
/// <param name="Path">Absolute path of the program (no PATH search).</param>
/// <param name="Arguments">argv[1..]; argv[0] is <paramref name="Path"/>.</param>
public sealed record SpawnRequest(string Path, IReadOnlyList<string> Arguments)
{
    /// <summary>The child's whole environment (nothing is inherited).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    public string? WorkingDirectory { get; init; }
    /// <summary>
    /// Descriptors the child gets, keyed by their number in the child (0, 1, 2 for stdio, 3… for extra ones such as
    /// conmon's sync and start pipes). A standard stream not listed here is /dev/null. Nothing else is inherited
    /// unless it lacks close-on-exec (Hull opens everything with O_CLOEXEC).
    /// </summary>
    public IReadOnlyDictionary<int, SafeHandle> Descriptors { get; init; } = new Dictionary<int, SafeHandle>();
}

/// <summary>
/// posix_spawn with file actions: the one way to start a child that must inherit descriptors at fixed numbers,
/// which <see cref="System.Diagnostics.Process"/> cannot do. Used for conmon, which daemonizes and so outlives the
/// short-lived process runner's model. The caller reaps the child (<see cref="ChildProcesses"/>).
/// </summary>
public static unsafe partial class ProcessSpawner
{
    private const short PosixSpawnSetSigDef = 0x04, PosixSpawnSetSigMask = 0x08;
    private const int ORdWr = 2, FDupFdCloexec = 1030;
    // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on 64-bit; they are opaque to us,
    // so allocate generously. sigset_t is 128 bytes.
    private const int OpaqueSize = 1024, SigsetSize = 128;
    // Sources are first duplicated to descriptors at or above this number so a dup2 onto a low target number can
    // never clobber another source.
    private const int HighDescriptorFloor = 100;

    /// <summary>Starts the program and returns its pid. Throws <see cref="SyscallException"/> when it cannot be started.</summary>
    public static int Spawn(SpawnRequest request)
    {
        ArgumentException.ThrowIfNullOrEmpty(request.Path);
        if (!System.IO.Path.IsPathRooted(request.Path))
            throw new ArgumentException($"program path \"{request.Path}\" must be absolute", nameof(request));
        foreach (var target in request.Descriptors.Keys)
            if (target is < 0 or >= HighDescriptorFloor)
                throw new ArgumentException($"child descriptor number {target} is out of range 0..{HighDescriptorFloor - 1}", nameof(request));

        var refs = new List<SafeHandle>();
        var duplicates = new List<int>();
        byte* fileActions = (byte*)NativeMemory.AllocZeroed(OpaqueSize);
        byte* attributes = (byte*)NativeMemory.AllocZeroed(OpaqueSize);
        byte* sigset = (byte*)NativeMemory.AllocZeroed(SigsetSize);
        var strings = new List<nint>();
        bool actionsInitialized = false, attributesInitialized = false;
        try
        {
            Check(posix_spawn_file_actions_init(fileActions), "posix_spawn_file_actions_init");
            actionsInitialized = true;
            Check(posix_spawnattr_init(attributes), "posix_spawnattr_init");
            attributesInitialized = true;

            foreach (var (target, handle) in request.Descriptors.OrderBy(p => p.Key))
            {
                bool added = false;
                handle.DangerousAddRef(ref added);
                refs.Add(handle);
                int high = fcntl(handle.DangerousGetHandle().ToInt32(), FDupFdCloexec, HighDescriptorFloor);
                if (high < 0) throw SyscallException.Last("fcntl(F_DUPFD_CLOEXEC)", null);
                duplicates.Add(high);
                Check(posix_spawn_file_actions_adddup2(fileActions, high, target), "posix_spawn_file_actions_adddup2");
            }
            for (int std = 0; std <= 2; std++)
                if (!request.Descriptors.ContainsKey(std))
                    Check(posix_spawn_file_actions_addopen(fileActions, std, "/dev/null", ORdWr, 0), "posix_spawn_file_actions_addopen");
            if (request.WorkingDirectory is { } cwd)
                Check(posix_spawn_file_actions_addchdir_np(fileActions, cwd), "posix_spawn_file_actions_addchdir_np");

            // The runtime blocks and handles signals for itself: give the child default dispositions and an empty mask.
            Check(posix_spawnattr_setflags(attributes, PosixSpawnSetSigDef | PosixSpawnSetSigMask), "posix_spawnattr_setflags");
            sigfillset(sigset);
            Check(posix_spawnattr_setsigdefault(attributes, sigset), "posix_spawnattr_setsigdefault");
            sigemptyset(sigset);
            Check(posix_spawnattr_setsigmask(attributes, sigset), "posix_spawnattr_setsigmask");

            var argv = new List<string> { request.Path };
            argv.AddRange(request.Arguments);
            var envp = request.Environment.Select(p => $"{p.Key}={p.Value}").ToList();
            nint* argvArray = StringArray(argv, strings);
            nint* envpArray = StringArray(envp, strings);

            int pid;
            int error = posix_spawn(&pid, request.Path, fileActions, attributes, argvArray, envpArray);
            if (error != 0) throw new SyscallException("posix_spawn", request.Path, error);
            return pid;
        }
        finally
        {
            foreach (var fd in duplicates) close(fd);
            foreach (var handle in refs) handle.DangerousRelease();
            foreach (var p in strings) NativeMemory.Free((void*)p);
            if (actionsInitialized) posix_spawn_file_actions_destroy(fileActions);
            if (attributesInitialized) posix_spawnattr_destroy(attributes);
            NativeMemory.Free(fileActions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(sigset);
        }
    }

    private static nint* StringArray(List<string> values, List<nint> allocations)
    {
        var array = (nint*)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(nint));
        allocations.Add((nint)array);
        for (int i = 0; i < values.Count; i++)
        {
            if (values[i].Contains('\0')) throw new ArgumentException("arguments and environment must not contain NUL");
            int length = Encoding.UTF8.GetByteCount(values[i]);
            var bytes = (byte*)NativeMemory.Alloc((nuint)length + 1);
            allocations.Add((nint)bytes);
            Encoding.UTF8.GetBytes(values[i], new Span<byte>(bytes, length));
            bytes[length] = 0;
            array[i] = (nint)bytes;
        }
        return array;
    }

    private static void Check(int error, string call)
    {
        if (error != 0) throw new SyscallException(call, null, error);
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn(int* pid, string path, byte* fileActions, byte* attributes, nint* argv, nint* envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(byte* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(byte* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(byte* fileActions, int fd, int newfd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addopen(byte* fileActions, int fd, string path, int oflag, uint mode);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addchdir_np(byte* fileActions, string path);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(byte* attributes);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(byte* attributes);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(byte* attributes, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(byte* attributes, byte* sigset);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(byte* attributes, byte* sigset);

    [LibraryImport("libc")]
    private static partial int sigemptyset(byte* set);

    [LibraryImport("libc")]
    private static partial int sigfillset(byte* set);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
