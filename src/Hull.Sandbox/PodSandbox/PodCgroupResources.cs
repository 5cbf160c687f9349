using System.Globalization;
using Hull.Runtime.Cgroups;
using Hull.Sandbox.Controller;

namespace Hull.Sandbox.PodSandbox;

/// <summary>
/// Writes UpdatePodSandboxResources' limits into the pod cgroup, in each hierarchy the node has: cgroup v1's
/// <c>cpu.shares</c>, <c>cpu.cfs_period_us</c>, <c>cpu.cfs_quota_us</c>, <c>memory.limit_in_bytes</c>, or cgroup v2's
/// <c>cpu.weight</c> (shares converted as runc converts them), <c>cpu.max</c> and <c>memory.max</c>. On v2 the cpu and
/// memory controllers are first enabled down the path (<c>cgroup.subtree_control</c>), as runc does for a container.
/// A file the kernel does not offer (controller not available) is skipped and returned.
/// </summary>
internal static class PodCgroupResources
{
    public const long DefaultCpuPeriod = 100_000;

    /// <returns>The files that were skipped because they do not exist.</returns>
    public static IReadOnlyList<string> Apply(CgroupPaths paths, CgroupLayout layout, SandboxResources resources)
    {
        var skipped = new List<string>();
        void Write(string? dir, string file, string? value)
        {
            if (dir is null || value is null) return;
            var path = Path.Combine(dir, file);
            if (File.Exists(path)) File.WriteAllText(path, value);
            else skipped.Add(path);
        }
        static string? Num(long? value) => value?.ToString(CultureInfo.InvariantCulture);

        if (layout.Mode == CgroupMode.Unified && paths.Unified is { } dir && layout.Unified is { } mount)
        {
            var wanted = new List<string>();
            if (resources.CpuShares is not null || resources.CpuQuota is not null || resources.CpuPeriod is not null) wanted.Add("cpu");
            if (resources.MemoryLimitBytes is not null) wanted.Add("memory");
            EnableControllers(mount.MountPoint, dir, wanted);
            Write(dir, "cpu.weight", resources.CpuShares is { } shares and > 0 ? Num(CpuSharesToWeight(shares)) : null);
            Write(dir, "cpu.max", CpuMax(resources.CpuQuota, resources.CpuPeriod));
            Write(dir, "memory.max", resources.MemoryLimitBytes is { } limit and > 0 ? Num(limit) : null);
        }
        else
        {
            Write(paths.Controller("cpu"), "cpu.shares", Num(resources.CpuShares));
            Write(paths.Controller("cpu"), "cpu.cfs_period_us", Num(resources.CpuPeriod));
            Write(paths.Controller("cpu"), "cpu.cfs_quota_us", Num(resources.CpuQuota));
            Write(paths.Controller("memory"), "memory.limit_in_bytes", Num(resources.MemoryLimitBytes));
        }
        return skipped;
    }

    /// <summary>runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000].</summary>
    public static long CpuSharesToWeight(long shares) => shares <= 0 ? 0 : 1 + (Math.Clamp(shares, 2, 262144) - 2) * 9999 / 262142;

    /// <summary>"quota period" for cpu.max ("max" for no quota), or null when neither is set.</summary>
    public static string? CpuMax(long? quota, long? period)
    {
        if (quota is null && period is null) return null;
        string q = quota is { } v and > 0 ? v.ToString(CultureInfo.InvariantCulture) : "max";
        return $"{q} {(period is { } p and > 0 ? p : DefaultCpuPeriod).ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>Enables <paramref name="controllers"/> in <c>cgroup.subtree_control</c> of every ancestor of <paramref name="dir"/> below <paramref name="root"/> (inclusive).</summary>
    private static void EnableControllers(string root, string dir, IReadOnlyList<string> controllers)
    {
        if (controllers.Count == 0) return;
        var relative = Path.GetRelativePath(root, dir);
        if (relative.StartsWith("..", StringComparison.Ordinal) || relative == ".") return;
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        string current = root;
        for (int i = 0; i < parts.Length; i++)
        {
            var control = Path.Combine(current, "cgroup.subtree_control");
            var available = Path.Combine(current, "cgroup.controllers");
            if (File.Exists(control) && File.Exists(available))
            {
                var have = File.ReadAllText(available).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var enabled = File.ReadAllText(control).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                foreach (var c in controllers)
                    if (have.Contains(c) && !enabled.Contains(c)) File.WriteAllText(control, "+" + c);
            }
            current = Path.Combine(current, parts[i]);
        }
    }
}
