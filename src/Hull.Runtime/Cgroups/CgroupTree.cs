using Hull.Core;

namespace Hull.Runtime.Cgroups;

/// <summary>Removing cgroups: rmdir of each directory, children first (cgroupfs has no recursive delete; its files go with the directory).</summary>
public static class CgroupTree
{
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
