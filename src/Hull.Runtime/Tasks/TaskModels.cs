using Hull.Runtime.Spec;

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

    /// <summary>The OCI form (<c>linux.resources</c>): what <c>runc update --resources -</c> reads.</summary>
    public OciResources ToOci() => new()
    {
        Memory = MemoryLimitBytes is null && MemorySwapLimitBytes is null ? null : new OciMemory { Limit = MemoryLimitBytes, Swap = MemorySwapLimitBytes },
        Cpu = CpuShares is null && CpuQuota is null && CpuPeriod is null && CpusetCpus is null && CpusetMems is null ? null
            : new OciCpu { Shares = CpuShares, Quota = CpuQuota, Period = CpuPeriod, Cpus = CpusetCpus, Mems = CpusetMems },
        Pids = PidsLimit is { } pids ? new OciPids(pids) : null,
        Unified = Unified is { Count: > 0 } unified ? unified : null,
    };

    /// <summary>From the OCI form (what NRI plugins ask a container to be updated to); what it does not set is left alone.</summary>
    public static TaskResources FromOci(OciResources resources) => new()
    {
        CpuShares = resources.Cpu?.Shares,
        CpuQuota = resources.Cpu?.Quota,
        CpuPeriod = resources.Cpu?.Period,
        CpusetCpus = resources.Cpu?.Cpus,
        CpusetMems = resources.Cpu?.Mems,
        MemoryLimitBytes = resources.Memory?.Limit,
        MemorySwapLimitBytes = resources.Memory?.Swap,
        PidsLimit = resources.Pids?.Limit,
        Unified = resources.Unified,
    };
}
