using Hull.Linux;

namespace Hull.Runtime.Cgroups;

/// <summary>How the node mounts cgroups.</summary>
public enum CgroupMode
{
    /// <summary>No cgroup file system is mounted.</summary>
    None,
    /// <summary>cgroup v1 controllers only.</summary>
    Legacy,
    /// <summary>cgroup v1 controllers plus a controller-less cgroup2 tree (usually at /sys/fs/cgroup/unified).</summary>
    Hybrid,
    /// <summary>cgroup v2 at /sys/fs/cgroup.</summary>
    Unified,
}

/// <summary>One mounted cgroup hierarchy: where it is mounted and which cgroup its mount shows as its root.</summary>
public sealed record CgroupMount(string MountPoint, string Root);

/// <summary>
/// The node's cgroup mounts, read from /proc/self/mountinfo (no statfs needed): the v1 hierarchy of each controller
/// (separate or co-mounted, such as <c>cpu,cpuacct</c>) and the cgroup2 tree.
/// </summary>
public sealed class CgroupLayout
{
    public const string DefaultRoot = "/sys/fs/cgroup";

    private CgroupLayout(CgroupMode mode, CgroupMount? unified, IReadOnlyDictionary<string, CgroupMount> v1)
    {
        Mode = mode;
        Unified = unified;
        V1 = v1;
    }

    public CgroupMode Mode { get; }
    /// <summary>The cgroup2 mount (the whole tree when <see cref="Mode"/> is Unified, the controller-less one when Hybrid).</summary>
    public CgroupMount? Unified { get; }
    /// <summary>v1 hierarchies by controller name ("cpu", "cpuacct", "memory", "pids", … and "name=systemd").</summary>
    public IReadOnlyDictionary<string, CgroupMount> V1 { get; }

    private static readonly Lazy<CgroupLayout> Host = new(() => FromMountInfo(File.ReadAllText("/proc/self/mountinfo")));

    /// <summary>The layout of this node, read once.</summary>
    public static CgroupLayout Detect() => Host.Value;

    /// <summary>Reads a mountinfo text. <paramref name="cgroupRoot"/> is where a unified hierarchy would be mounted.</summary>
    public static CgroupLayout FromMountInfo(string mountInfo, string cgroupRoot = DefaultRoot)
    {
        CgroupMount? unified = null;
        bool unifiedAtRoot = false;
        var v1 = new Dictionary<string, CgroupMount>(StringComparer.Ordinal);
        foreach (var mount in MountInfo.Parse(mountInfo))
        {
            if (mount.FsType == "cgroup2")
            {
                bool atRoot = mount.MountPoint == cgroupRoot;
                // Prefer the mount at the canonical root; otherwise the first one (the hybrid "unified" tree).
                if (unified is null || (atRoot && !unifiedAtRoot))
                {
                    unified = new CgroupMount(mount.MountPoint, mount.Root);
                    unifiedAtRoot = atRoot;
                }
            }
            else if (mount.FsType == "cgroup")
            {
                foreach (var option in mount.SuperOptions.Split(','))
                {
                    if (option is "rw" or "ro" || option.StartsWith("release_agent=", StringComparison.Ordinal) ||
                        option is "clone_children" or "noprefix" or "xattr" or "cpuset_v2_mode" or "nsdelegate")
                        continue;
                    v1.TryAdd(option, new CgroupMount(mount.MountPoint, mount.Root));
                }
            }
        }
        var mode = unifiedAtRoot ? CgroupMode.Unified
            : v1.Count > 0 ? (unified is not null ? CgroupMode.Hybrid : CgroupMode.Legacy)
            : unified is not null ? CgroupMode.Unified
            : CgroupMode.None;
        if (mode == CgroupMode.Unified) v1.Clear();
        return new CgroupLayout(mode, unified, v1);
    }
}
