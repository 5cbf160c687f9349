using Hull.Core;

namespace Hull.Runtime.Cgroups;

/// <summary>
/// Making and removing cgroups. Removing is rmdir of each directory, children first (cgroupfs has no recursive delete;
/// its files go with the directory).
/// </summary>
public static class CgroupTree
{
    /// <summary>
    /// Makes the cgroup in every hierarchy, parents included, ready for a process to join: a new v1 cpuset cgroup has
    /// no CPUs and no memory nodes (nothing can join it), so each new level takes its parent's, as runc does.
    /// </summary>
    public static void Create(CgroupPaths paths, CgroupLayout layout)
    {
        foreach (var dir in paths.Directories) Directory.CreateDirectory(dir);
        if (paths.Controller("cpuset") is not { } cpuset || !layout.V1.TryGetValue("cpuset", out var mount)) return;
        var levels = new Stack<string>();
        for (string? dir = cpuset; dir is not null && dir.Length > mount.MountPoint.Length; dir = Path.GetDirectoryName(dir)) levels.Push(dir);
        while (levels.TryPop(out var level))
            foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
            {
                string path = Path.Combine(level, file);
                if (File.ReadAllText(path).Trim().Length == 0)
                    File.WriteAllText(path, File.ReadAllText(Path.Combine(Path.GetDirectoryName(level)!, file)));
            }
    }

    /// <summary>
    /// Removes the cgroup and its descendants in every hierarchy. A cgroup whose last processes are still exiting
    /// refuses rmdir with EBUSY for a moment, so this retries until <paramref name="timeout"/>; a cgroup that still
    /// has processes after that is reported (FailedPrecondition). Missing directories are fine.
    /// </summary>
    public static async Task RemoveAsync(CgroupPaths paths, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var dir in paths.Directories)
        {
            while (true)
            {
                var busy = TryRemoveTree(dir);
                if (busy is null) break;
                if (DateTime.UtcNow >= deadline)
                    throw new HullException(ErrorKind.FailedPrecondition, $"cgroup \"{busy}\" is still in use and cannot be removed");
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Removes what it can; returns the first directory that is still busy, or null when the tree is gone.</summary>
    private static string? TryRemoveTree(string dir)
    {
        if (!Directory.Exists(dir)) return null;
        string[] children;
        try
        {
            children = Directory.GetDirectories(dir);
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        foreach (var child in children)
            if (TryRemoveTree(child) is { } busy) return busy;
        try
        {
            Directory.Delete(dir, recursive: false);
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (IOException)
        {
            return dir; // EBUSY: processes (or a child created meanwhile) are still there
        }
    }
}
