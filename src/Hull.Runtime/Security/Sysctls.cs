using Hull.Core;

namespace Hull.Runtime.Security;

/// <summary>
/// Pod sysctls, the one rule set for both the pod's namespaces (set when they are pinned) and the container spec:
/// only namespaced ones are accepted, and only when the pod has its own namespace of that kind (runc's list in
/// libcontainer/configs/validate, which runc applies to every spec), so a pod can never change the host's kernel
/// settings and a sysctl that passes here never fails later in runc.
/// </summary>
public static class Sysctls
{
    public enum Namespace { None, Ipc, Network, Uts }

    private static readonly HashSet<string> IpcNames = new(StringComparer.Ordinal)
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    };

    /// <summary>"net/ipv4/conf/eth0.100/rp_filter" and "net.ipv4.conf.eth0/100.rp_filter" are the same sysctl; the dotted form is canonical.</summary>
    public static string Normalize(string name)
    {
        int firstSeparator = name.IndexOfAny(['.', '/']);
        if (firstSeparator < 0 || name[firstSeparator] == '.') return name;
        return string.Create(name.Length, name, (span, n) =>
        {
            for (int i = 0; i < n.Length; i++) span[i] = n[i] switch { '/' => '.', '.' => '/', var c => c };
        });
    }

    /// <summary>Which namespace a sysctl belongs to; <see cref="Namespace.None"/> for a host-wide one.</summary>
    public static Namespace NamespaceOf(string name)
    {
        if (name.StartsWith("net.", StringComparison.Ordinal)) return Namespace.Network;
        if (IpcNames.Contains(name) || name.StartsWith("fs.mqueue.", StringComparison.Ordinal)) return Namespace.Ipc;
        if (name == "kernel.domainname") return Namespace.Uts;
        return Namespace.None;
    }

    /// <summary>The sysctls in canonical form, or an InvalidArgument error naming the first one that is not allowed.</summary>
    public static IReadOnlyDictionary<string, string> Validate(
        IReadOnlyDictionary<string, string> sysctls, bool hostNetwork, bool hostIpc, bool hostUts)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (rawName, value) in sysctls)
        {
            string name = Normalize(rawName.Trim());
            if (name.Length == 0 || name.Split('.').Any(s => s.Length == 0))
                throw new HullException(ErrorKind.InvalidArgument, $"sysctl \"{rawName}\" is not a valid name");
            if (name == "kernel.hostname")
                throw new HullException(ErrorKind.InvalidArgument, "sysctl \"kernel.hostname\" is not allowed: set the pod's hostname instead");
            switch (NamespaceOf(name))
            {
                case Namespace.Network when hostNetwork:
                    throw new HullException(ErrorKind.InvalidArgument, $"sysctl \"{name}\" needs the pod's own network namespace, but the pod uses the host network");
                case Namespace.Ipc when hostIpc:
                    throw new HullException(ErrorKind.InvalidArgument, $"sysctl \"{name}\" needs the pod's own IPC namespace, but the pod uses the host IPC namespace");
                case Namespace.Uts when hostUts:
                    throw new HullException(ErrorKind.InvalidArgument, $"sysctl \"{name}\" needs the pod's own UTS namespace, but the pod uses the host's");
                case Namespace.None:
                    throw new HullException(ErrorKind.InvalidArgument, $"sysctl \"{name}\" is not namespaced: setting it in a pod would change the host");
            }
            result[name] = value;
        }
        return result;
    }

    /// <summary>Where a validated (canonical, dotted) sysctl lives under /proc/sys.</summary>
    public static string ProcPath(string canonicalName) =>
        "/proc/sys/" + string.Create(canonicalName.Length, canonicalName, static (span, n) =>
        {
            for (int i = 0; i < n.Length; i++) span[i] = n[i] switch { '.' => '/', '/' => '.', var c => c };
        });
}
