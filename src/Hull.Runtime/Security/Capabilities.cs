using System.Globalization;
using Hull.Core;

namespace Hull.Runtime.Security;

/// <summary>Linux capability names and the sets a container starts with (containerd's rules for CRI).</summary>
public static class Capabilities
{
    /// <summary>Every capability Hull knows, indexed by its number (capability.h), with the CAP_ prefix.</summary>
    public static IReadOnlyList<string> KernelNames { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    /// <summary>containerd's default set (pkg/oci defaultUnixCaps), the same 14 Docker has always used.</summary>
    public static IReadOnlyList<string> Default { get; } =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    private static readonly HashSet<string> Known = new(KernelNames, StringComparer.Ordinal);

    /// <summary>All capabilities the running kernel knows: numbers 0 through /proc/sys/kernel/cap_last_cap.</summary>
    public static IReadOnlyList<string> KnownToKernel(string capLastCapPath = "/proc/sys/kernel/cap_last_cap")
    {
        int last = int.Parse(File.ReadAllText(capLastCapPath).Trim(), CultureInfo.InvariantCulture);
        return KernelNames.Take(Math.Min(last, KernelNames.Count - 1) + 1).ToArray();
    }

    /// <summary>
    /// The capabilities this process holds (its effective set, /proc/self/status CapEff): what a privileged container
    /// can really be given. On a normal root host this is every capability the kernel knows; where root itself
    /// lacks some (a sandbox without CAP_SYS_RESOURCE, say), asking runc for more would make it fail.
    /// </summary>
    public static IReadOnlyList<string> Current(string statusPath = "/proc/self/status")
    {
        foreach (var line in File.ReadLines(statusPath))
        {
            if (!line.StartsWith("CapEff:", StringComparison.Ordinal)) continue;
            ulong mask = ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return FromMask(mask);
        }
        throw new HullException(ErrorKind.Internal, $"{statusPath} has no CapEff line");
    }

    public static IReadOnlyList<string> FromMask(ulong mask)
    {
        var names = new List<string>();
        for (int bit = 0; bit < KernelNames.Count; bit++)
            if ((mask & (1UL << bit)) != 0) names.Add(KernelNames[bit]);
        return names;
    }

    /// <summary>"net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN.</summary>
    public static string Normalize(string name)
    {
        string upper = name.Trim().ToUpperInvariant();
        return upper.StartsWith("CAP_", StringComparison.Ordinal) ? upper : "CAP_" + upper;
    }

    /// <summary>
    /// The container's bounding/effective/permitted set from CRI add/drop lists, as containerd computes it: start from
    /// <see cref="Default"/>; "ALL" in add gives <paramref name="all"/>, "ALL" in drop empties the set; then the named
    /// additions and removals apply, so add ALL + drop CHOWN is everything but CAP_CHOWN and drop ALL + add KILL is only
    /// CAP_KILL. An unknown capability name is an InvalidArgument error (runc would refuse it less clearly).
    /// </summary>
    public static IReadOnlyList<string> Compute(IReadOnlyList<string> add, IReadOnlyList<string> drop, IReadOnlyList<string> all)
    {
        var caps = new List<string>(Default);
        bool IsAll(string c) => string.Equals(c.Trim(), "ALL", StringComparison.OrdinalIgnoreCase);
        if (add.Any(IsAll)) caps = new List<string>(all);
        if (drop.Any(IsAll)) caps.Clear();
        foreach (var c in add.Where(c => !IsAll(c)).Select(Validate))
            if (!caps.Contains(c)) caps.Add(c);
        foreach (var c in drop.Where(c => !IsAll(c)).Select(Validate))
            caps.Remove(c);
        return caps;
    }

    private static string Validate(string name)
    {
        string normalized = Normalize(name);
        if (!Known.Contains(normalized))
            throw new HullException(ErrorKind.InvalidArgument, $"unknown capability \"{name}\"");
        return normalized;
    }
}
