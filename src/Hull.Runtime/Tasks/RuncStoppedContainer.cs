using System.Text.Json;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;

namespace Hull.Runtime.Tasks;

/// <summary>
/// Deletes a stopped runc container the way <c>runc delete</c> does (runc 1.1: delete.go, libcontainer's destroy), without
/// a run of runc: a Go program that takes about 20 ms here just to start, paid at every container's exit. For a
/// stopped container runc removes its cgroups, then its state directory, then runs its poststop hooks. This does the
/// same only where that is all runc would do, read from runc's own state.json: the init is gone, the container had a
/// PID namespace of its own (the kernel kills everything in it before its init is gone, so nothing of the container
/// can still run; with a shared one runc first kills what is left in the cgroup), no poststop hooks, cgroupfs and
/// not systemd, and no Intel RDT. Anything else, a state it does not recognise (another runtime, another version's
/// format) or a cgroup that stays busy answers false, and the caller runs the runtime's own delete.
/// </summary>
internal static class RuncStoppedContainer
{
    /// <summary>runc's wait for a cgroup whose last processes are still exiting (cgroups.RemovePaths: 10 ms, doubling, 5 tries).</summary>
    private static readonly TimeSpan CgroupBusyWait = TimeSpan.FromMilliseconds(150);

    /// <summary>True when the container was stopped and is now deleted; false when the runtime must delete it.</summary>
    public static async Task<bool> TryDeleteAsync(string root, string id, CancellationToken cancellationToken)
    {
        var stateDirectory = Path.Combine(root, id);
        if (TryReadDeletable(Path.Combine(stateDirectory, "state.json")) is not { } cgroups) return false;
        try
        {
            await CgroupTree.RemoveAsync(cgroups, CgroupBusyWait, cancellationToken).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.FailedPrecondition)
        {
            return false; // still busy after runc's own wait: the runtime's delete decides, as without this shortcut
        }
        try
        {
            Directory.Delete(stateDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException) { } // another delete was quicker
        return true;
    }

    /// <summary>The container's cgroups when it may be deleted here; null otherwise (see the class).</summary>
    internal static CgroupPaths? TryReadDeletable(string stateFile)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(stateFile);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(bytes);
            var state = document.RootElement;
            var config = state.GetProperty("config");
            if (!InitIsGone(state.GetProperty("init_process_pid").GetInt32(), state.GetProperty("init_process_start").GetUInt64())
                || !HasOwnPidNamespace(config)
                || HasPoststopHooks(config)
                || (config.GetProperty("cgroups").TryGetProperty("Systemd", out var systemd) && systemd.GetBoolean())
                || (state.TryGetProperty("intel_rdt_path", out var rdt) && rdt.ValueKind == JsonValueKind.String && rdt.GetString()!.Length > 0))
                return null;
            return CgroupsOf(state.GetProperty("cgroup_paths"));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null; // not runc 1.x's state
        }
    }

    /// <summary>As runc's status: a pid that no longer exists, now names another process, or is a zombie is a stopped init.</summary>
    private static bool InitIsGone(int pid, ulong startTime) =>
        pid <= 0 || ProcessInfo.TryRead(pid) is not { } process || process.StartTime != startTime || process.IsZombie;

    private static bool HasOwnPidNamespace(JsonElement config)
    {
        foreach (var ns in config.GetProperty("namespaces").EnumerateArray())
            if (ns.GetProperty("type").GetString() == "NEWPID")
                return !ns.TryGetProperty("path", out var path) || path.ValueKind == JsonValueKind.Null || path.GetString()!.Length == 0;
        return false;
    }

    /// <summary>runc writes its hooks under "Hooks" (a Go field without a JSON name), each kind a list or null.</summary>
    private static bool HasPoststopHooks(JsonElement config) =>
        (config.TryGetProperty("Hooks", out var hooks) || config.TryGetProperty("hooks", out hooks)) && hooks.ValueKind == JsonValueKind.Object
        && hooks.TryGetProperty("poststop", out var poststop) && poststop.ValueKind != JsonValueKind.Null
        && (poststop.ValueKind != JsonValueKind.Array || poststop.GetArrayLength() > 0);

    /// <summary>cgroup_paths maps each v1 controller to its directory, and "" to the cgroup2 one.</summary>
    private static CgroupPaths? CgroupsOf(JsonElement paths)
    {
        string? unified = null;
        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in paths.EnumerateObject())
        {
            var dir = entry.Value.GetString();
            // rmdir removes only empty directories, but nothing outside the cgroup filesystems is ours to touch.
            if (dir is null || !dir.StartsWith("/sys/fs/cgroup/", StringComparison.Ordinal) || dir.Split('/').Contains("..")) return null;
            if (entry.Name.Length == 0) unified = dir;
            else v1[entry.Name] = dir;
        }
        return new CgroupPaths(unified, v1);
    }
}
