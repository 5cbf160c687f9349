using System.Globalization;
using System.Runtime.InteropServices;
using Hull.Core;
using Hull.Linux.Processes;

namespace Hull.Sandbox.PodSandbox;

/// <summary>One process, named so that a later process reusing its pid is not taken for it: host pid and /proc start time.</summary>
public readonly record struct InfraProcessId(int Pid, ulong StartTime)
{
    /// <summary>"&lt;pid&gt; &lt;start time&gt;", as hull-infra writes it; null when the text is not that.</summary>
    public static InfraProcessId? TryParse(string text)
    {
        var parts = text.Trim().Split(' ');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0
            && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong start) && start > 0
            ? new InfraProcessId(pid, start) : null;
    }

    public bool IsRunning => ProcessInfo.IsAlive(Pid, StartTime);
}

/// <summary>What <c>hull-infra</c> needs to start one pod's infra process.</summary>
public sealed record DirectInfraRequest
{
    public required string SandboxId { get; init; }
    /// <summary>The static binary to run as PID 1 (catatonit), with its arguments.</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>An empty directory, the process's read-only root in a mount namespace of its own.</summary>
    public required string Root { get; init; }
    /// <summary>Where hull-infra records the process (see <see cref="InfraProcessId"/>).</summary>
    public required string PidFile { get; init; }
    /// <summary>The cgroup directories (one per hierarchy) it joins; they must exist.</summary>
    public IReadOnlyList<string> Cgroups { get; init; } = [];
    public string UserNsPath { get; init; } = "";
    public string NetNsPath { get; init; } = "";
    public string IpcNsPath { get; init; } = "";
    public string UtsNsPath { get; init; } = "";
    public int? OomScoreAdj { get; init; }
    public uint Uid { get; init; } = 65535;
    public uint Gid { get; init; } = 65535;
}

/// <summary>
/// A shared-PID pod's infra process started by Hull's helper <c>hull-infra</c> (cmd/hull-infra) instead of runc under
/// conmon: catatonit as PID 1 of a new PID namespace, in the pod's namespaces and cgroup, with an empty directory as
/// its read-only root (its own mount namespace, pivot_root), no capabilities and no new privileges. It only holds the
/// namespace, so it needs no monitor: Hull names it by <see cref="InfraProcessId"/>, kills it with a pidfd and watches it the same way. hull-infra writes the
/// pid file before anything else can fail, so stop, removal and the orphan sweep find the process even when hulld died
/// between its start and the store's write.
/// </summary>
public static class DirectInfraProcess
{
    private static readonly TimeSpan HelperTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Starts the process; throws <see cref="HullException"/> with hull-infra's reason when it cannot.</summary>
    public static async Task<InfraProcessId> StartAsync(string helper, DirectInfraRequest request)
    {
        var args = new List<string> { "--root", request.Root, "--pid-file", request.PidFile,
            "--uid", request.Uid.ToString(CultureInfo.InvariantCulture), "--gid", request.Gid.ToString(CultureInfo.InvariantCulture) };
        foreach (var cgroup in request.Cgroups) args.AddRange(["--cgroup", cgroup]);
        if (request.OomScoreAdj is { } oom) args.AddRange(["--oom-score-adj", oom.ToString(CultureInfo.InvariantCulture)]);
        void Namespace(string flag, string path)
        {
            if (path.Length > 0) args.AddRange([flag, path]);
        }
        Namespace("--user", request.UserNsPath);
        Namespace("--net", request.NetNsPath);
        Namespace("--ipc", request.IpcNsPath);
        Namespace("--uts", request.UtsNsPath);
        args.Add("--");
        args.AddRange(request.Command);
        // Not cancelled with the call: hull-infra takes a few milliseconds, and killed half-way it could leave a process
        // that only its pid file names. Spawned directly (posix_spawn): System.Diagnostics.Process added 5-25 ms a pod.
        var (ours, theirs) = Descriptors.CreateSocketPair();
        int pid;
        try
        {
            pid = ProcessSpawner.Spawn(new SpawnRequest(helper, args) { Descriptors = new Dictionary<int, SafeHandle> { [1] = theirs, [2] = theirs } });
        }
        catch (Exception e)
        {
            ours.Dispose();
            if (e is Linux.SyscallException) throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{request.SandboxId}\": cannot run {helper}: {e.Message}", e);
            throw;
        }
        finally
        {
            theirs.Dispose();
        }
        string output;
        ExitStatus exit;
        using (var socket = ours.ToSocket())
        {
            try
            {
                output = await Descriptors.ReadAllAsync(socket, 64 << 10).WaitAsync(HelperTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Signals.TrySend(pid, Signals.SIGKILL);
                output = $"no answer within {HelperTimeout.TotalSeconds:0} s";
            }
            exit = await ChildProcesses.WaitForExitAsync(pid).ConfigureAwait(false);
        }
        output = output.Trim();
        if (exit.Code != 0 || exit.Signal is not null)
        {
            string why = output.Length > 0 ? output
                : exit.Signal is { } signal ? $"{helper} was killed by signal {signal}" : $"{helper} exited with {exit.Code}";
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{request.SandboxId}\": cannot start the infra process: {why}");
        }
        return InfraProcessId.TryParse(output)
            ?? throw new HullException(ErrorKind.Internal, $"pod sandbox \"{request.SandboxId}\": {helper} answered \"{output}\", not \"<pid> <start time>\"");
    }

    /// <summary>The process a pid file names; null when there is no readable pid file.</summary>
    public static InfraProcessId? ReadPidFile(string path)
    {
        try
        {
            return InfraProcessId.TryParse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Kills the process (SIGKILL: as PID 1 of its namespace it takes every process left in it along) and waits until it
    /// is gone. Nothing happens when it has already exited or the pid now names another process.
    /// </summary>
    public static async Task KillAsync(InfraProcessId process, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var pidfd = PidFd.TryOpen(process.Pid);
        // The pidfd pins the identity: once it is open, the start time read next is this process's, and the signal goes to it.
        if (pidfd is null || !process.IsRunning) return;
        pidfd.TrySendSignal(Signals.SIGKILL);
        try
        {
            await pidfd.WaitForExitAsync(cancellationToken).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new HullException(ErrorKind.DeadlineExceeded, $"infra process {process.Pid} did not exit within {timeout.TotalSeconds:0} s of SIGKILL");
        }
    }
}
