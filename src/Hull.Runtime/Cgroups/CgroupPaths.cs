namespace Hull.Runtime.Cgroups;

/// <summary>
/// The directories of one cgroup: its v1 directory per controller and its cgroup2 directory. On a unified node only
/// <see cref="Unified"/> is set; on a hybrid node both are (the cgroup2 one holds no controllers).
/// </summary>
public sealed record CgroupPaths(string? Unified, IReadOnlyDictionary<string, string> V1)
{
    /// <summary>The v1 directory of a controller ("memory", "cpuacct", …), or null.</summary>
    public string? Controller(string name) => V1.TryGetValue(name, out var dir) ? dir : null;

    /// <summary>Every distinct directory of this cgroup, one per hierarchy.</summary>
    public IEnumerable<string> Directories =>
        V1.Values.Concat(Unified is null ? [] : [Unified]).Distinct(StringComparer.Ordinal);

    /// <summary>Where a process is now, from /proc/&lt;pid&gt;/cgroup.</summary>
    public static CgroupPaths ForProcess(int pid, CgroupLayout layout) =>
        FromProcCgroup(File.ReadAllText($"/proc/{pid}/cgroup"), layout);

    /// <summary>Parses a /proc/&lt;pid&gt;/cgroup text ("hierarchy-id:controllers:path" lines).</summary>
    public static CgroupPaths FromProcCgroup(string text, CgroupLayout layout)
    {
        string? unified = null;
        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int first = line.IndexOf(':');
            int second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0) continue;
            string controllers = line[(first + 1)..second];
            string path = line[(second + 1)..];
            if (controllers.Length == 0)
            {
                if (layout.Unified is { } mount) unified = Join(mount, path);
                continue;
            }
            foreach (var controller in controllers.Split(','))
                if (layout.V1.TryGetValue(controller, out var mount))
                    v1[controller] = Join(mount, path);
        }
        return new CgroupPaths(unified, v1);
    }

    /// <summary>
    /// The directories of a cgroupfs-driver cgroup path (an OCI <c>linux.cgroupsPath</c> such as "/kubepods/pod1/abc"),
    /// which names the same path in every hierarchy.
    /// </summary>
    public static CgroupPaths ForCgroupsPath(string cgroupsPath, CgroupLayout layout)
    {
        if (!cgroupsPath.StartsWith('/'))
            throw new ArgumentException($"cgroup path \"{cgroupsPath}\" must be absolute (the cgroupfs driver form)", nameof(cgroupsPath));
        if (cgroupsPath.Split('/').Any(part => part == ".."))
            throw new ArgumentException($"cgroup path \"{cgroupsPath}\" must not contain \"..\"", nameof(cgroupsPath));
        var v1 = layout.V1.ToDictionary(p => p.Key, p => Combine(p.Value.MountPoint, cgroupsPath), StringComparer.Ordinal);
        return new CgroupPaths(layout.Unified is { } u ? Combine(u.MountPoint, cgroupsPath) : null, v1);
    }

    private static string Join(CgroupMount mount, string path)
    {
        // A hierarchy mounted from a non-root cgroup (a container's view) shows paths relative to that root.
        if (mount.Root != "/" && path.StartsWith(mount.Root, StringComparison.Ordinal))
            path = path[mount.Root.Length..];
        return Combine(mount.MountPoint, path);
    }

    private static string Combine(string mountPoint, string path)
    {
        var trimmed = path.Trim('/');
        return trimmed.Length == 0 ? mountPoint : Path.Combine(mountPoint, trimmed);
    }
}
