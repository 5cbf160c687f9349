using Hull.Core;
using Hull.Linux.Namespaces;

namespace Hull.Sandbox.Namespaces;

/// <summary>Namespaced sysctls: which namespace each belongs to (runc's rule), and writing one under /proc/sys.</summary>
internal static class Sysctls
{
    private static readonly HashSet<string> IpcNames = new(StringComparer.Ordinal)
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    };

    /// <summary>
    /// The path under /proc/sys of <paramref name="name"/> (Kubernetes' dot form <c>net.ipv4.conf.eth0/100.rp_filter</c>
    /// or slash form <c>net/ipv4/conf/eth0.100/rp_filter</c>); refuses a sysctl that is not in one of <paramref name="unshared"/>,
    /// since writing it would change the node.
    /// </summary>
    public static string ProcPath(string sandboxId, string name, NamespaceTypes unshared)
    {
        int sep = name.IndexOfAny(['.', '/']);
        bool slashForm = sep >= 0 && name[sep] == '/';
        string dotted = slashForm ? Swap(name) : name;
        string path = slashForm ? name : Swap(name);
        if (path.Length == 0 || path.Split('/').Any(s => s.Length == 0 || s == ".." || s == "."))
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{sandboxId}\": sysctl \"{name}\" is not a valid name");

        NamespaceTypes owner =
            dotted.StartsWith("net.", StringComparison.Ordinal) ? NamespaceTypes.Network :
            IpcNames.Contains(dotted) || dotted.StartsWith("fs.mqueue.", StringComparison.Ordinal) ? NamespaceTypes.Ipc :
            dotted is "kernel.hostname" or "kernel.domainname" ? NamespaceTypes.Uts :
            NamespaceTypes.None;
        if (owner == NamespaceTypes.None)
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{sandboxId}\": sysctl \"{name}\" is not namespaced and would change the node");
        if (!unshared.HasFlag(owner))
            throw new HullException(ErrorKind.InvalidArgument,
                $"pod sandbox \"{sandboxId}\": sysctl \"{name}\" needs a private {LinuxNamespaces.ProcName(owner)} namespace");
        return "/proc/sys/" + path;
    }

    /// <summary>Writes on the calling thread, so the value lands in that thread's namespaces.</summary>
    public static void Write(string procPath, string value)
    {
        using var stream = new FileStream(procPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(value));
    }

    private static string Swap(string s) => string.Create(s.Length, s, static (span, src) =>
    {
        for (int i = 0; i < src.Length; i++) span[i] = src[i] switch { '.' => '/', '/' => '.', var c => c };
    });
}
