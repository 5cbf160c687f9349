using System.Text.Json.Nodes;

namespace Hull.Runtime.Tasks;

/// <summary>A container to create under conmon from an OCI bundle (config.json plus rootfs) someone else prepared.</summary>
/// <param name="Id">Container id: the runc id, conmon's -c/-u and the directory name; [A-Za-z0-9_.-], at most 128 characters.</param>
/// <param name="BundlePath">Directory with config.json; conmon also puts its ctl/winsz FIFOs and attach socket here.</param>
/// <param name="LogPath">CRI log file conmon writes (k8s-file format). Absolute, and without ':' (conmon splits on it).</param>
public sealed record TaskCreateRequest(string Id, string BundlePath, string LogPath)
{
    /// <summary>Container name conmon logs with; defaults to the id.</summary>
    public string? Name { get; init; }
    /// <summary>The process has a TTY (config.json process.terminal must say so too).</summary>
    public bool Terminal { get; init; }
    /// <summary>Keep a stdin pipe the attach socket can write to.</summary>
    public bool Stdin { get; init; }
    /// <summary>Close stdin after the first attach session ends.</summary>
    public bool StdinOnce { get; init; }
}

/// <summary>The OCI runtime's view of a container (runc state).</summary>
public enum RuntimeStatus { Created, Running, Paused, Stopped, Unknown }

/// <summary>A created container: its init process and the conmon that watches it.</summary>
public sealed record TaskInfo(string Id, int Pid, int ConmonPid, string BundlePath, string LogPath, DateTimeOffset CreatedAt);

/// <summary>How a container ended. <see cref="ExitCode"/> is 128 + signal for a signalled process (137 after SIGKILL).</summary>
public sealed record TaskExit(int ExitCode, DateTimeOffset FinishedAt, bool OomKilled)
{
    /// <summary>Set when the real exit code is unknown (conmon died before writing it); <see cref="ExitCode"/> is then 255.</summary>
    public string? Message { get; init; }

    /// <summary>The CRI reason: OOMKilled, Completed or Error.</summary>
    public string Reason => OomKilled ? "OOMKilled" : ExitCode == 0 ? "Completed" : "Error";
}

/// <summary>Runtime state plus, once the container has ended, how it ended.</summary>
public sealed record TaskState(string Id, RuntimeStatus Status, int Pid, TaskExit? Exit);

/// <summary>What <see cref="TaskManager.RecoverAsync"/> found on disk and on the node after a restart.</summary>
public sealed record TaskRecovery(string Id, RuntimeStatus Status, int Pid, int ConmonPid, bool ConmonAlive, TaskExit? Exit);

/// <summary>Result of a synchronous exec (CRI ExecSync). A timeout is a result (exit code -1, <see cref="TimedOut"/>), not an error.</summary>
public sealed record ExecSyncResult(int ExitCode, byte[] Stdout, byte[] Stderr, bool TimedOut, bool OutputTruncated);

/// <summary>
/// A change of a running container's resources (CRI UpdateContainerResources, cgroupfs units). Unset fields are left
/// alone. Serialised as OCI <c>linux.resources</c> for <c>runc update --resources -</c>.
/// </summary>
public sealed record TaskResources
{
    public ulong? CpuShares { get; init; }
    public long? CpuQuota { get; init; }
    public ulong? CpuPeriod { get; init; }
    public string? CpusetCpus { get; init; }
    public string? CpusetMems { get; init; }
    public long? MemoryLimitBytes { get; init; }
    /// <summary>Memory plus swap (v1 memsw); the kubelet sets it equal to the memory limit when swap is off.</summary>
    public long? MemorySwapLimitBytes { get; init; }
    public long? PidsLimit { get; init; }
    /// <summary>cgroup v2 files to write as they are ("memory.high" = "…").</summary>
    public IReadOnlyDictionary<string, string>? Unified { get; init; }

    public JsonObject ToOciJson()
    {
        var resources = new JsonObject();
        var memory = new JsonObject();
        if (MemoryLimitBytes is { } limit) memory["limit"] = limit;
        if (MemorySwapLimitBytes is { } swap) memory["swap"] = swap;
        if (memory.Count > 0) resources["memory"] = memory;
        var cpu = new JsonObject();
        if (CpuShares is { } shares) cpu["shares"] = shares;
        if (CpuQuota is { } quota) cpu["quota"] = quota;
        if (CpuPeriod is { } period) cpu["period"] = period;
        if (CpusetCpus is { } cpus) cpu["cpus"] = cpus;
        if (CpusetMems is { } mems) cpu["mems"] = mems;
        if (cpu.Count > 0) resources["cpu"] = cpu;
        if (PidsLimit is { } pids) resources["pids"] = new JsonObject { ["limit"] = pids };
        if (Unified is { Count: > 0 })
        {
            var unified = new JsonObject();
            foreach (var (key, value) in Unified) unified[key] = value;
            resources["unified"] = unified;
        }
        return resources;
    }
}
