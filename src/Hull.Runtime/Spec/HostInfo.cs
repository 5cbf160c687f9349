using Hull.Linux;
using System.Runtime.InteropServices;
using Hull.Runtime.Security;

namespace Hull.Runtime.Spec;

/// <summary>Facts about the node that change the spec. <see cref="Detect"/> reads them once; tests build their own.</summary>
public sealed record HostInfo
{
    public KernelVersion Kernel { get; init; } = new(6, 1);
    /// <summary>Go's GOARCH spelling of the architecture ("amd64"), which the seccomp profile switches on.</summary>
    public string Architecture { get; init; } = SeccompDefaultProfile.GoArch(RuntimeInformation.OSArchitecture);
    /// <summary>/sys/fs/cgroup is cgroup2 (not v1 or hybrid): containers get a cgroup namespace.</summary>
    public bool CgroupV2Unified { get; init; }
    public bool SeccompEnabled { get; init; } = true;
    public AppArmorHost AppArmor { get; init; } = AppArmorHost.Disabled;
    public bool HugetlbControllerAvailable { get; init; } = true;
    public bool SwapControllerAvailable { get; init; } = true;
    /// <summary>What a privileged container (or add ALL) gets: the capabilities this process holds.</summary>
    public IReadOnlyList<string> AllCapabilities { get; init; } = Capabilities.KernelNames;
    /// <summary>hulld's own oom_score_adj, the floor when scores are restricted (see <see cref="RestrictsOomScoreAdj"/>).</summary>
    public int OomScoreAdj { get; init; }
    /// <summary>The kernel has the new mount API (open_tree, move_mount, mount_setattr): recursive read-only and idmapped binds.</summary>
    public bool MountSetattr { get; init; } = true;
    /// <summary>hulld may lower an oom_score_adj (it has CAP_SYS_RESOURCE); where it may not, runc fails unless scores are clamped.</summary>
    public bool CanLowerOomScoreAdj { get; init; } = true;

    /// <summary>Whether container and infra scores are clamped to hulld's own: asked for by config, or forced by the host.</summary>
    public bool RestrictsOomScoreAdj(SpecBuilderOptions options) => options.RestrictOomScoreAdj || !CanLowerOomScoreAdj;

    public static HostInfo Detect()
    {
        bool unified = CgroupV2UnifiedMode();
        return new HostInfo
        {
            Kernel = KernelVersion.Current(),
            CgroupV2Unified = unified,
            SeccompEnabled = SeccompProfiles.IsEnabled(),
            AppArmor = AppArmorHost.Detect(),
            HugetlbControllerAvailable = unified
                ? ReadOrEmpty("/sys/fs/cgroup/cgroup.controllers").Split(' ', StringSplitOptions.TrimEntries).Contains("hugetlb")
                : Directory.Exists("/sys/fs/cgroup/hugetlb"),
            SwapControllerAvailable = unified ? SwapV2Available() : File.Exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            AllCapabilities = Capabilities.Current(),
            OomScoreAdj = OomScoreAdjPolicy.Current(),
            CanLowerOomScoreAdj = OomScoreAdjPolicy.CanLower(),
            MountSetattr = MountTree.Supported,
        };
    }

    /// <summary>Whether /sys/fs/cgroup itself is a cgroup2 mount (per /proc/self/mountinfo).</summary>
    public static bool CgroupV2UnifiedMode(string mountInfoPath = "/proc/self/mountinfo")
    {
        var entries = MountInfo.Parse(ReadOrEmpty(mountInfoPath));
        var top = entries.LastOrDefault(e => e.MountPoint == "/sys/fs/cgroup");
        return top?.FsType == "cgroup2";
    }

    private static bool SwapV2Available()
    {
        // The "0::/path" line of /proc/self/cgroup; memory.swap.max exists where the swap controller is on.
        string? path = ReadOrEmpty("/proc/self/cgroup").Split('\n').FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..].Trim();
        if (path is null) return false;
        string dir = path == "/" ? "/sys/fs/cgroup" : Path.Join("/sys/fs/cgroup", path);
        return File.Exists(Path.Join(dir, "memory.swap.max")) || File.Exists(Path.Join(Path.GetDirectoryName(dir) ?? dir, "memory.swap.max"));
    }

    private static string ReadOrEmpty(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }
}
