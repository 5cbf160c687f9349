using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Hull.Linux.Namespaces;

/// <summary>The namespace kinds a pod shares between its containers (and its user namespace), as their clone(2) flags.</summary>
[Flags]
public enum NamespaceTypes
{
    None = 0,
    Uts = 0x04000000,     // CLONE_NEWUTS
    Ipc = 0x08000000,     // CLONE_NEWIPC
    Network = 0x40000000, // CLONE_NEWNET
    User = 0x10000000,    // CLONE_NEWUSER
}

/// <summary>
/// unshare(2), setns(2), gettid(2), sethostname(2) and the nsfs check. Namespace membership is per thread:
/// callers run these on a dedicated thread that is discarded afterwards, never on a pool thread.
/// </summary>
public static partial class LinuxNamespaces
{
    /// <summary>statfs f_type of the namespace file system (/proc/…/ns/* and bind mounts of them).</summary>
    public const long NsfsMagic = 0x6e736673;

    private const int ORdOnly = 0, OCloexec = 0x80000;

    /// <summary>The /proc/&lt;pid&gt;/ns entry name of one namespace kind.</summary>
    public static string ProcName(NamespaceTypes type) => type switch
    {
        NamespaceTypes.Network => "net",
        NamespaceTypes.Ipc => "ipc",
        NamespaceTypes.Uts => "uts",
        NamespaceTypes.User => "user",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "exactly one namespace kind"),
    };

    /// <summary>unshare(2) for the calling thread.</summary>
    public static void Unshare(NamespaceTypes types)
    {
        if (unshare((int)types) != 0) throw SyscallException.Last($"unshare({types})", null);
    }

    /// <summary>The calling thread's kernel id (what /proc/self/task/&lt;tid&gt; names).</summary>
    public static int CurrentThreadId() => gettid();

    /// <summary>/proc/self/task/&lt;tid&gt;/ns/&lt;kind&gt; of the calling thread.</summary>
    public static string CurrentThreadNamespacePath(NamespaceTypes type) =>
        $"/proc/self/task/{gettid()}/ns/{ProcName(type)}";

    /// <summary>Opens a namespace file (a /proc ns entry or a bind mount of one) for <see cref="Enter"/>.</summary>
    public static SafeFileHandle Open(string path)
    {
        int fd = open(path, ORdOnly | OCloexec);
        if (fd < 0) throw SyscallException.Last("open", path);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>setns(2): moves the calling thread into the namespace <paramref name="handle"/> refers to.</summary>
    public static void Enter(SafeFileHandle handle, NamespaceTypes type, string? pathForErrors = null)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (setns((int)handle.DangerousGetHandle(), (int)type) != 0) throw SyscallException.Last($"setns({type})", pathForErrors);
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>sethostname(2) in the calling thread's UTS namespace.</summary>
    public static void SetHostname(string hostname)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(hostname);
        if (sethostname(bytes, (nuint)bytes.Length) != 0) throw SyscallException.Last("sethostname", hostname);
    }

    /// <summary>statfs(2) f_type of the file system holding <paramref name="path"/>; null when it does not exist.</summary>
    public static unsafe long? FileSystemType(string path)
    {
        long* buffer = stackalloc long[32]; // struct statfs is 120 bytes on 64-bit Linux; f_type is its first word
        if (statfs(path, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errno.ENOENT or Errno.ENOTDIR) return null;
            throw new SyscallException("statfs", path, errno);
        }
        return buffer[0];
    }

    /// <summary>Whether <paramref name="path"/> is (a bind mount of) a namespace, i.e. lives on nsfs.</summary>
    public static bool IsNamespace(string path) => FileSystemType(path) == NsfsMagic;

    /// <summary>Bind-mounts <paramref name="source"/> (a namespace file) onto the existing file <paramref name="target"/>.</summary>
    public static void BindMount(string source, string target)
    {
        if (NativeMount.mount(source, target, null, (nuint)MountFlags.Bind, null) != 0)
            throw SyscallException.Last($"mount (bind) \"{source}\" on", target);
    }

    /// <summary>
    /// Makes <paramref name="directory"/> a shared mount point (binding it onto itself first when it is not a
    /// mount point yet), so namespace pins below it propagate, and unmount, in mount namespaces copied from this one.
    /// </summary>
    public static void MakeSharedMountPoint(string directory)
    {
        const MountFlags shared = MountFlags.Shared | MountFlags.Rec;
        if (NativeMount.mount("none", directory, null, (nuint)shared, null) == 0) return;
        int errno = Marshal.GetLastPInvokeError();
        if (errno != Errno.EINVAL) throw new SyscallException("mount (make-rshared)", directory, errno);
        if (NativeMount.mount(directory, directory, null, (nuint)(MountFlags.Bind | MountFlags.Rec), null) != 0)
            throw SyscallException.Last("mount (rbind onto itself)", directory);
        if (NativeMount.mount("none", directory, null, (nuint)shared, null) != 0)
            throw SyscallException.Last("mount (make-rshared)", directory);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc")]
    private static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sethostname(byte[] name, nuint len);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statfs(string path, long* buffer);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
}
