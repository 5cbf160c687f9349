namespace Hull.Runtime.Tests.Fixtures;

/// <summary>
/// What the container tests need: root, runc, conmon and a static busybox for the rootfs. Where they are missing
/// the tests are skipped with the reason, except when HULL_E2E_REQUIRED=1 (CI), where a missing prerequisite fails.
/// </summary>
public static class Prerequisites
{
    public const string Busybox = "/bin/busybox";

    public static bool Required => Environment.GetEnvironmentVariable("HULL_E2E_REQUIRED") == "1";

    public static bool IsRoot => Environment.UserName == "root" || File.ReadAllText("/proc/self/status").Contains("\nUid:\t0\t");

    public static string? MissingForContainers()
    {
        if (!IsRoot) return "container tests run as root";
        foreach (var tool in new[] { "runc", "conmon" })
            if (Resolve(tool) is null) return $"{tool} is not installed; run hack/install-deps.sh";
        if (!File.Exists(Busybox)) return $"{Busybox} is missing (Debian package busybox-static)";
        if (!Directory.Exists("/sys/fs/cgroup")) return "no /sys/fs/cgroup";
        return null;
    }

    public static string? MissingForCgroupfs() =>
        !IsRoot ? "cgroup file system tests run as root" : !Directory.Exists("/sys/fs/cgroup") ? "no /sys/fs/cgroup" : null;

    public static string? Resolve(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
                     .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]))
            if (File.Exists(Path.Combine(dir, tool))) return Path.Combine(dir, tool);
        return null;
    }
}

/// <summary>A test that starts real containers with runc under conmon (root, runc, conmon, busybox).</summary>
public sealed class ContainerFactAttribute : FactAttribute
{
    public ContainerFactAttribute()
    {
        if (Prerequisites.MissingForContainers() is { } reason && !Prerequisites.Required) Skip = reason;
    }
}

/// <summary>A theory whose cases start real containers (<see cref="ContainerFactAttribute"/>).</summary>
public sealed class ContainerTheoryAttribute : TheoryAttribute
{
    public ContainerTheoryAttribute()
    {
        if (Prerequisites.MissingForContainers() is { } reason && !Prerequisites.Required) Skip = reason;
    }
}

/// <summary>A test that creates and removes cgroups in the real cgroup file system (root).</summary>
public sealed class CgroupfsFactAttribute : FactAttribute
{
    public CgroupfsFactAttribute()
    {
        if (Prerequisites.MissingForCgroupfs() is { } reason && !Prerequisites.Required) Skip = reason;
    }
}
