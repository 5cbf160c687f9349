using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Core.Processes;
using Hull.Linux;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Runtime.Tasks;

/// <summary>
/// Containers as processes: each one runs under its own conmon (CRI-O's execution model), which is the parent of
/// the container's init, writes its CRI log, records its exit code in exits/&lt;id&gt; and keeps running when hulld
/// restarts. Everything needed to find a container again is on disk (<see cref="TaskPaths"/>), so a new instance of
/// this class — a restarted hulld — picks up where the last one stopped (<see cref="RecoverAsync"/>).
/// Operations that change a container take its own lock; nothing holds a global lock.
/// </summary>
public sealed partial class TaskManager : ITaskService, IInteractiveTaskService, IDisposable
{
    private const string TimedOutMessage = "command timed out";
    private static readonly TimeSpan ExitPollInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan ConmonDrainGrace = TimeSpan.FromSeconds(2);

    private readonly TaskOptions _options;
    private readonly ILogger _logger;
    private readonly Lazy<string> _conmonPath;
    private readonly RuncClient _runc;
    private readonly ExitWatcher _exits;
    private readonly ConcurrentDictionary<string, TaskEntry> _tasks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);

    public TaskManager(TaskOptions options, ILogger<TaskManager>? logger = null)
    {
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Paths = new TaskPaths(options.StateDirectory);
        _conmonPath = new Lazy<string>(() => Executables.Resolve(options.ConmonPath, "conmon"));
        // A missing runtime is reported when first used, so a node without it still starts and says so in Status.
        var runtimePath = Executables.TryResolve(options.RuntimePath) ?? options.RuntimePath;
        _runc = new RuncClient(runtimePath, options.ResolvedRuntimeRoot, options.SystemdCgroup, options.RuntimeCommandTimeout);
        foreach (var dir in new[] { Paths.ContainersDirectory, Paths.AttachDirectory, Paths.ExecDirectory }) Directory.CreateDirectory(dir);
        _exits = new ExitWatcher(Paths.ExitsDirectory);
    }

    public TaskPaths Paths { get; }

    private string RuntimePath => Executables.Resolve(_runc.RuntimePath, "OCI runtime");

    // ---------------------------------------------------------------- create / start

    /// <summary>
    /// Starts conmon, which runs <c>runc create</c> and reports the container's pid; the container is then "created"
    /// (its init waits for <see cref="StartAsync"/>). On failure nothing is left behind.
    /// </summary>
    public Task<TaskInfo> CreateAsync(TaskCreateRequest request, CancellationToken cancellationToken = default) =>
        CreateAsync(request, start: false, cancellationToken);

    /// <summary>
    /// Creates and starts the container with one run of the runtime: conmon runs hull-run-detached, which makes its
    /// <c>create</c> a <c>run --detach</c> (a separate <c>runc start</c> is a third of a container's start). Without
    /// the helper, <c>runc create</c> then <c>runc start</c>. On failure nothing is left behind.
    /// </summary>
    public Task<TaskInfo> RunAsync(TaskCreateRequest request, CancellationToken cancellationToken = default) =>
        _options.RunDetachedHelper.Length > 0
            ? CreateAsync(request, start: true, cancellationToken)
            : ITaskService.CreateThenStartAsync(this, request, cancellationToken);

    private async Task<TaskInfo> CreateAsync(TaskCreateRequest request, bool start, CancellationToken cancellationToken)
    {
        using var activity = RuntimeTelemetry.Source.StartActivity(start ? "conmon + runc run" : "conmon + runc create");
        var id = request.Id;
        TaskPaths.ValidateId(id);
        ValidateCreate(request);
        if (!_creating.TryAdd(id, 0)) throw new HullException(ErrorKind.AlreadyExists, $"container \"{id}\" is being created");
        try
        {
            if (_tasks.ContainsKey(id) || File.Exists(Paths.RecordFile(id)))
                throw new HullException(ErrorKind.AlreadyExists, $"container \"{id}\" already exists");
            var dir = Paths.TaskDirectory(id);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Paths.RuntimeStateMarker(id), []);
            Directory.CreateDirectory(Path.GetDirectoryName(request.LogPath)!);
            RemoveConmonFiles(id, request.BundlePath); // leftovers of an earlier failed attempt would confuse conmon

            var arguments = CreateArguments(request, start ? _options.RunDetachedHelper : RuntimePath);
            _logger.LogDebug("starting conmon for container {Id}: {Arguments}", id, string.Join(' ', arguments));
            using var deadline = new CancellationTokenSource(_options.CreateTimeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            using var conmon = Spawn(arguments, dir, start ? RuntimePath : null);
            int conmonPid = 0;
            try
            {
                await conmon.ReleaseAsync(linked.Token).ConfigureAwait(false);
                // conmon forks its monitor and exits at once; the monitor is then no child of ours.
                var first = await conmon.WaitForExitAsync(linked.Token).ConfigureAwait(false);
                if (first.Code != 0)
                    throw new HullException(ErrorKind.Internal,
                        $"conmon for container \"{id}\" failed (exit code {first.Code}): {await conmon.StderrAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false)}");
                conmonPid = ReadPidFile(Paths.ConmonPidFile(id)) ?? 0;
                var message = await conmon.ReadMessageAsync(linked.Token).ConfigureAwait(false);
                if (message is null)
                    throw new HullException(ErrorKind.Internal,
                        $"conmon for container \"{id}\" exited before reporting the container's pid: {await conmon.StderrAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false)}");
                if (message.Data <= 0)
                    throw new HullException(ErrorKind.Internal,
                        $"{(start ? "running" : "creating")} container \"{id}\" failed: {RuncClient.RuncMessage(message.Message ?? "no message from conmon")}");

                int pid = message.Data;
                var now = DateTimeOffset.UtcNow;
                var record = new TaskRecord
                {
                    Id = id,
                    BundlePath = request.BundlePath,
                    LogPath = request.LogPath,
                    Pid = pid,
                    PidStartTime = ProcessInfo.TryRead(pid)?.StartTime ?? 0,
                    ConmonPid = conmonPid,
                    ConmonStartTime = ProcessInfo.TryRead(conmonPid)?.StartTime ?? 0,
                    CreatedAt = now,
                    StartedAt = start ? now : null,
                };
                if (TryReadCgroups(pid) is { } cgroups)
                    record = record with { CgroupV1 = cgroups.V1.ToDictionary(p => p.Key, p => p.Value), CgroupUnified = cgroups.Unified };
                record.Save(Paths.RecordFile(id));
                _tasks[id] = new TaskEntry(record);
                _logger.LogInformation("{Verb} container {Id}: pid {Pid}, conmon {ConmonPid}", start ? "started" : "created", id, pid, conmonPid);
                return Info(record);
            }
            catch (Exception e)
            {
                conmon.KillAndReap();
                await CleanUpFailedCreateAsync(id, request.BundlePath, conmonPid).ConfigureAwait(false);
                if (e is OperationCanceledException && deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                    throw new HullException(ErrorKind.DeadlineExceeded,
                        $"creating container \"{id}\" did not finish within {_options.CreateTimeout.TotalSeconds:0.###} s", e);
                throw;
            }
        }
        finally
        {
            _creating.TryRemove(id, out _);
        }
    }

    /// <summary><c>runc start</c>: the created container's init runs its process.</summary>
    public async Task StartAsync(string id, CancellationToken cancellationToken = default)
    {
        using var activity = RuntimeTelemetry.Source.StartActivity("runc start");
        var entry = GetEntry(id);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _runc.StartAsync(id, cancellationToken).ConfigureAwait(false);
            entry.Record = entry.Record with { StartedAt = DateTimeOffset.UtcNow };
            entry.Record.Save(Paths.RecordFile(id));
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    // ---------------------------------------------------------------- signals, wait, stop

    /// <summary>Sends a signal to the container's init (<paramref name="all"/>: to every process of the container).</summary>
    public Task KillAsync(string id, int signal, bool all = false, CancellationToken cancellationToken = default)
    {
        GetEntry(id);
        return _runc.KillAsync(id, signal, all, cancellationToken);
    }

    /// <summary>
    /// Waits until conmon has recorded the container's exit (after it drained the output into the log). If conmon
    /// disappears without recording it, the exit code is reported as 255 with a message, as CRI-O does.
    /// </summary>
    public async Task<TaskExit> WaitAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        while (true)
        {
            if (TryReadExit(entry) is { } exit) return exit;
            if (!ConmonAlive(entry.Record))
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false); // it may have written the file as it exited
                return TryReadExit(entry) ?? LostExit(entry);
            }
            await _exits.WaitForChangeAsync(id, ExitPollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The recorded exit, or null while the container has not ended.</summary>
    public TaskExit? TryGetExit(string id) => TryReadExit(GetEntry(id));

    /// <summary>
    /// Stops the container: <paramref name="signal"/> (its image's stop signal, SIGTERM by default), then SIGKILL
    /// when it has not ended after <paramref name="timeout"/>, repeated until it has. Returns how it ended.
    /// </summary>
    public async Task<TaskExit> StopAsync(string id, TimeSpan timeout, int signal = Signals.SIGTERM, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        if (TryReadExit(entry) is { } done) return done;
        if (timeout > TimeSpan.Zero)
        {
            await SignalAsync(entry, signal, cancellationToken).ConfigureAwait(false);
            if (await WaitAsync(id, timeout, cancellationToken).ConfigureAwait(false) is { } exit) return exit;
            _logger.LogInformation("container {Id} did not stop within {Timeout} after signal {Signal}; killing it", id, timeout, signal);
        }
        while (true)
        {
            await SignalAsync(entry, Signals.SIGKILL, cancellationToken).ConfigureAwait(false);
            if (await WaitAsync(id, TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false) is { } exit) return exit;
            _logger.LogWarning("container {Id} is still running after SIGKILL; retrying", id);
        }
    }

    private async Task<TaskExit?> WaitAsync(string id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            return await WaitAsync(id, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// SIGKILL goes straight to the init through a pidfd, checked against its start time: that is all <c>runc kill</c>
    /// without <c>--all</c> does (it checks, then kill(2)), 20 ms sooner, and SIGKILL cannot be caught or ignored,
    /// not even by a namespace's init signalled from outside. Other signals go through <c>runc kill</c>: sent by pidfd
    /// (tried), a stop sent right after a start (critest does) reached busybox <c>top</c>, its namespace's init, before
    /// it had a SIGTERM handler; an init ignores such a signal, so the stop waited out its whole timeout (60 s). The
    /// runtimes the kubelet knows signal as late.
    /// </summary>
    private async Task SignalAsync(TaskEntry entry, int signal, CancellationToken cancellationToken)
    {
        if (signal == Signals.SIGKILL && entry.Record is { Pid: > 0, PidStartTime: > 0 } started)
        {
            using var init = OpenIfSame(started.Pid, started.PidStartTime);
            init?.TrySendSignal(signal); // no process, or it has exited: already stopped, its exit is conmon's to record
            return;
        }
        try
        {
            await _runc.KillAsync(entry.Record.Id, signal, all: false, cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (HullException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.FailedPrecondition)
        {
            return; // already stopped
        }
        catch (HullException e)
        {
            _logger.LogWarning("{Message}; signalling pid {Pid} directly", e.Message, entry.Record.Pid);
        }
        using var pidfd = OpenIfSame(entry.Record.Pid, entry.Record.PidStartTime);
        pidfd?.TrySendSignal(signal);
    }

    // ---------------------------------------------------------------- state, delete

    /// <summary>The runtime's state of the container and, once it has stopped, its exit.</summary>
    public async Task<TaskState> StateAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        var state = await _runc.StateAsync(id, cancellationToken).ConfigureAwait(false);
        var exit = TryReadExit(entry);
        if (state is null) return new TaskState(id, exit is null ? RuntimeStatus.Unknown : RuntimeStatus.Stopped, 0, exit);
        var status = ParseStatus(state.Status);
        return new TaskState(id, status, status == RuntimeStatus.Stopped ? 0 : state.Pid, status == RuntimeStatus.Stopped ? exit : null);
    }

    /// <summary>
    /// <c>runc delete --force</c> (which kills what still runs and removes the container's cgroup; for most stopped
    /// containers done without a run of runc, <see cref="RuncStoppedContainer"/>), makes sure its conmon has exited,
    /// then removes conmon's files. The bundle and the log file stay. Deleting an unknown container is not an error.
    /// </summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        TaskPaths.ValidateId(id);
        var entry = TryGetEntry(id);
        // Without a record or the marker there is nothing for the runtime to delete (never made, or deleted already at the
        // container's exit), and a run of it (tens of ms) is saved.
        if (entry is null && !File.Exists(Paths.RuntimeStateMarker(id))) return;
        if (entry is not null) await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (entry is not null && !(_tasks.TryGetValue(id, out var current) && current == entry)) return; // deleted while this call waited for the lock
            await _runc.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
            if (entry is not null) await EndConmonAsync(entry.Record, cancellationToken).ConfigureAwait(false);
            TryDelete(Paths.RecordFile(id));
            RemoveTaskFiles(id, entry?.Record.BundlePath);
            _tasks.TryRemove(id, out _);
        }
        finally
        {
            entry?.Lock.Release();
        }
    }

    private async Task EndConmonAsync(TaskRecord record, CancellationToken cancellationToken)
    {
        using var conmon = OpenIfSame(record.ConmonPid, record.ConmonStartTime);
        if (conmon is null) return;
        // With its container gone conmon drains the output, writes the exit file and exits by itself.
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        grace.CancelAfter(ConmonDrainGrace);
        try
        {
            await conmon.WaitForExitAsync(grace.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("conmon {Pid} of container {Id} did not exit; killing it", record.ConmonPid, record.Id);
            conmon.TrySendSignal(Signals.SIGKILL);
        }
    }

    // ---------------------------------------------------------------- exec

    /// <summary>
    /// Runs a command in the container and returns its output (CRI ExecSync), under a conmon exec session as CRI-O
    /// does: conmon runs <c>runc exec --detach</c>, collects the output into a CRI log and reports the exit code.
    /// It returns as soon as the command has exited, even if a background child still holds its stdout. When
    /// <paramref name="timeout"/> (zero means none) passes first, the command's process group is killed and the
    /// result says <see cref="ExecSyncResult.TimedOut"/> with exit code -1.
    /// </summary>
    public async Task<ExecSyncResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        if (command.Count == 0) throw new HullException(ErrorKind.InvalidArgument, $"exec in container \"{id}\" needs a command");
        var execId = Ids.NewShort();
        var dir = Path.Combine(Paths.ExecDirectory, $"{id}-{execId}");
        Directory.CreateDirectory(dir);
        try
        {
            var specFile = Path.Combine(dir, "process.json");
            var logFile = Path.Combine(dir, "output.log");
            await File.WriteAllBytesAsync(specFile, await ExecProcessJsonAsync(entry.Record, command, tty: false, null, cancellationToken)
                .ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            var arguments = new List<string>
            {
                "--api-version", "-c", id, "-u", execId, "-r", RuntimePath, "-p", Path.Combine(dir, "pid"),
                "-e", "--sync", "--exec-process-spec", specFile,
                "-l", "k8s-file:" + logFile, "--log-level", _options.ConmonLogLevel,
                "--log-global-size-max", _options.ExecSyncOutputLimit.ToString(CultureInfo.InvariantCulture),
            };
            if (_options.ConmonSyslog) arguments.Add("--syslog");
            // conmon's own timeout (glib whole-second timers, which may fire up to a second early) only backs up ours.
            if (timeout > TimeSpan.Zero)
                arguments.AddRange(["-T", ((int)Math.Ceiling(timeout.TotalSeconds) + 1).ToString(CultureInfo.InvariantCulture)]);
            arguments.AddRange(["--runtime-arg", "--root=" + _runc.Root]);

            var started = Stopwatch.GetTimestamp();
            using var conmon = Spawn(arguments, dir);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // Bounds a conmon that fails to end the session.
            if (timeout > TimeSpan.Zero) deadline.CancelAfter(timeout + TimeSpan.FromSeconds(10));
            int execPid = 0;
            try
            {
                await conmon.ReleaseAsync(deadline.Token).ConfigureAwait(false);
                var first = await conmon.ReadMessageAsync(deadline.Token).ConfigureAwait(false);
                if (first is null || first.Data <= 0)
                {
                    await conmon.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
                    throw ExecFailure(id, first?.Message ?? await conmon.StderrAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false));
                }
                execPid = first.Data;
                var endedTask = conmon.ReadMessageAsync(deadline.Token);
                bool timedOut = false;
                if (timeout > TimeSpan.Zero)
                {
                    var remaining = timeout - Stopwatch.GetElapsedTime(started);
                    var timer = Task.Delay(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, deadline.Token);
                    if (await Task.WhenAny(endedTask, timer).ConfigureAwait(false) != endedTask)
                    {
                        timedOut = true;
                        KillExec(execPid);
                    }
                }
                var ended = await endedTask.ConfigureAwait(false);
                await conmon.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
                if (ended is null)
                    throw new HullException(ErrorKind.Internal, $"conmon of an exec in container \"{id}\" exited without its exit code");
                timedOut |= ended.Data == -1 && ended.Message == TimedOutMessage;
                if (ended.Data < 0 && !timedOut) throw ExecFailure(id, ended.Message);
                return ReadExecOutput(logFile, timedOut ? -1 : ended.Data, timedOut);
            }
            catch (OperationCanceledException) when (execPid > 0 || !cancellationToken.IsCancellationRequested)
            {
                if (execPid > 0) KillExec(execPid);
                conmon.KillAndReap();
                if (cancellationToken.IsCancellationRequested) throw;
                return ReadExecOutput(logFile, -1, timedOut: true);
            }
            catch
            {
                conmon.KillAndReap();
                throw;
            }
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// Kills an exec'd command and whatever it started: runc makes it the leader of its own session and process
    /// group, so the group goes (as conmon does on its timeout); otherwise just the process.
    /// </summary>
    private static void KillExec(int execPid)
    {
        using var pidfd = PidFd.TryOpen(execPid);
        if (pidfd is null || pidfd.HasExited) return;
        if (ProcessInfo.TryRead(execPid) is { IsZombie: false } info && info.ProcessGroup == execPid)
            Signals.TrySendToGroup(execPid, Signals.SIGKILL);
        else
            pidfd.TrySendSignal(Signals.SIGKILL);
    }

    private ExecSyncResult ReadExecOutput(string logFile, int exitCode, bool timedOut)
    {
        byte[] log;
        bool truncated = false;
        try
        {
            using var stream = File.OpenRead(logFile);
            int length = (int)Math.Min(stream.Length, _options.ExecSyncOutputLimit);
            truncated = stream.Length > _options.ExecSyncOutputLimit;
            log = new byte[length];
            stream.ReadExactly(log);
        }
        catch (FileNotFoundException)
        {
            log = [];
        }
        var (stdout, stderr) = CriLog.Demultiplex(log);
        // conmon's --log-global-size-max stops writing at the limit; output that reached it was cut.
        truncated |= log.Length >= _options.ExecSyncOutputLimit;
        return new ExecSyncResult(exitCode, stdout, stderr, timedOut, truncated);
    }

    private static HullException ExecFailure(string id, string? message)
    {
        var text = RuncClient.RuncMessage(message ?? "");
        var kind = RuncClient.IsNotFound(text) ? ErrorKind.NotFound
            : text.Contains("not running", StringComparison.OrdinalIgnoreCase) || text.Contains("stopped", StringComparison.OrdinalIgnoreCase)
                ? ErrorKind.FailedPrecondition
                : ErrorKind.Internal;
        return new HullException(kind, $"exec in container \"{id}\" failed: {text}");
    }

    /// <summary>The container's own process (user, env, cwd, capabilities, …) with the exec's arguments and no terminal.</summary>
    /// <summary>The exec session's process.json: the container's process running <paramref name="command"/> (the spec builder's rule).</summary>
    private static async Task<byte[]> ExecProcessJsonAsync(TaskRecord record, IReadOnlyList<string> command, bool tty, OciConsoleSize? size,
        CancellationToken cancellationToken)
    {
        OciProcess container;
        try
        {
            container = (await SpecWriter.ReadAsync(record.BundlePath, cancellationToken).ConfigureAwait(false)).Process
                ?? throw new HullException(ErrorKind.FailedPrecondition, $"the spec of container \"{record.Id}\" has no process");
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot read the spec of container \"{record.Id}\": {e.Message}", e);
        }
        return OciJson.SerializeToUtf8Bytes(SpecBuilder.ExecProcess(container, command, tty, size));
    }

    // ---------------------------------------------------------------- resources, stats, logs

    /// <summary><c>runc update --resources -</c> with the OCI form of <paramref name="resources"/>.</summary>
    public async Task UpdateResourcesAsync(string id, TaskResources resources, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _runc.UpdateAsync(id, resources.ToOci(), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>The container's cgroup directories (recorded when it was created).</summary>
    public CgroupPaths GetCgroupPaths(string id)
    {
        var record = GetEntry(id).Record;
        if (record.CgroupV1 is null && record.CgroupUnified is null)
            return CgroupPaths.ForProcess(record.Pid, CgroupLayout.Detect());
        return new CgroupPaths(record.CgroupUnified, record.CgroupV1 ?? []);
    }

    /// <summary>CPU and memory usage of the container's cgroup.</summary>
    public CgroupStats GetStats(string id) => CgroupStatsReader.Read(GetCgroupPaths(id));

    /// <summary>
    /// Makes conmon close the log file and open it again at the same path (CRI ReopenContainerLog, after the
    /// kubelet renamed it for rotation): "2 0 0\n" on the ctl FIFO in the bundle. Returns once the new file exists.
    /// </summary>
    public async Task ReopenLogAsync(string id, CancellationToken cancellationToken = default)
    {
        var entry = GetEntry(id);
        var record = entry.Record;
        // After the exit conmon only drains and leaves; it would never act on the message.
        if (TryReadExit(entry) is not null)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" is not running, so its log cannot be reopened");
        var before = FileStatus.TryGet(record.LogPath)?.Inode;
        using (var control = Descriptors.TryOpenFifoForWrite(TaskPaths.ControlFifo(record.BundlePath)))
        {
            if (control is null)
                throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" has no running conmon, so its log cannot be reopened");
            control.Write("2 0 0\n"u8);
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (FileStatus.TryGet(record.LogPath) is not { } now || (before is not null && now.Inode == before))
        {
            if (TryReadExit(entry) is not null || !ConmonAlive(record))
                throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" exited before its log was reopened");
            if (DateTime.UtcNow > deadline)
                throw new HullException(ErrorKind.Internal, $"conmon of container \"{id}\" did not reopen {record.LogPath}");
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    // ---------------------------------------------------------------- restart

    /// <summary>Ids of the containers this state directory knows (for reconciling after a restart).</summary>
    public IReadOnlyList<string> ListIds()
    {
        if (!Directory.Exists(Paths.ContainersDirectory)) return [];
        return Directory.GetDirectories(Paths.ContainersDirectory)
            .Select(Path.GetFileName)
            .Where(id => id is not null && File.Exists(Paths.RecordFile(id)))
            .Select(id => id!)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Finds a container again from its files, as a restarted hulld does: running (its init is alive — the same
    /// process, by start time — and the runtime says so) or exited (exit code from conmon's exit file, finish time
    /// from that file's modification time). A container whose conmon vanished without an exit file is reported
    /// exited with 255 and a message.
    /// </summary>
    public async Task<TaskRecovery> RecoverAsync(string id, CancellationToken cancellationToken = default)
    {
        TaskPaths.ValidateId(id);
        var record = TaskRecord.Load(Paths.RecordFile(id))
            ?? throw new HullException(ErrorKind.NotFound, $"container \"{id}\" not found in {Paths.ContainersDirectory}");
        var entry = _tasks.GetOrAdd(id, _ => new TaskEntry(record));
        bool conmonAlive = ConmonAlive(record);
        if (TryReadExit(entry) is { } exit)
            return new TaskRecovery(id, RuntimeStatus.Stopped, record.Pid, record.ConmonPid, conmonAlive, exit);

        if (ProcessInfo.IsAlive(record.Pid, NonZero(record.PidStartTime)))
        {
            var state = await _runc.StateAsync(id, cancellationToken).ConfigureAwait(false);
            var status = state is null ? RuntimeStatus.Unknown : ParseStatus(state.Status);
            if (status is RuntimeStatus.Created or RuntimeStatus.Running or RuntimeStatus.Paused)
                return new TaskRecovery(id, status, record.Pid, record.ConmonPid, conmonAlive, null);
        }
        // The container has ended; its conmon (if alive) is about to write the exit file.
        if (conmonAlive && await WaitAsync(id, ConmonDrainGrace, cancellationToken).ConfigureAwait(false) is { } late)
            return new TaskRecovery(id, RuntimeStatus.Stopped, record.Pid, record.ConmonPid, ConmonAlive(record), late);
        return new TaskRecovery(id, RuntimeStatus.Stopped, record.Pid, record.ConmonPid, ConmonAlive(record), TryReadExit(entry) ?? LostExit(entry));
    }

    public void Dispose() => _exits.Dispose(); // conmon processes keep running: that is the point

    // ---------------------------------------------------------------- helpers

    private sealed class TaskEntry(TaskRecord record)
    {
        private volatile TaskRecord _record = record;
        private volatile TaskExit? _exit;

        public TaskRecord Record
        {
            get => _record;
            set => _record = value;
        }

        public TaskExit? Exit
        {
            get => _exit;
            set => _exit = value;
        }

        public SemaphoreSlim Lock { get; } = new(1, 1);
    }

    private TaskEntry GetEntry(string id) =>
        TryGetEntry(id) ?? throw new HullException(ErrorKind.NotFound, $"container \"{id}\" not found");

    /// <summary>From memory, or from task.json (a container created by an earlier hulld).</summary>
    private TaskEntry? TryGetEntry(string id)
    {
        TaskPaths.ValidateId(id);
        if (_tasks.TryGetValue(id, out var entry)) return entry;
        var record = TaskRecord.Load(Paths.RecordFile(id));
        return record is null ? null : _tasks.GetOrAdd(id, _ => new TaskEntry(record));
    }

    private static TaskInfo Info(TaskRecord record) =>
        new(record.Id, record.Pid, record.ConmonPid, record.BundlePath, record.LogPath, record.CreatedAt);

    /// <param name="runtime">What conmon runs as the runtime: the runtime itself, or hull-run-detached in front of it.</param>
    private List<string> CreateArguments(TaskCreateRequest request, string runtime)
    {
        var id = request.Id;
        var arguments = new List<string>
        {
            "--api-version",
            "-c", id, "-u", id, "-n", request.Name ?? id,
            "-r", runtime,
            "-b", request.BundlePath,
            "-p", Paths.ContainerPidFile(id),
            "-P", Paths.ConmonPidFile(id),
            "--persist-dir", Paths.TaskDirectory(id),
            "--exit-dir", Paths.ExitsDirectory,
            "-l", "k8s-file:" + request.LogPath,
            "--log-level", _options.ConmonLogLevel,
            "--socket-dir-path", Paths.AttachDirectory,
        };
        if (_options.ConmonSyslog) arguments.Add("--syslog");
        if (_options.LogSizeMax >= 0) arguments.AddRange(["--log-size-max", _options.LogSizeMax.ToString(CultureInfo.InvariantCulture)]);
        if (_options.SystemdCgroup) arguments.Add("-s");
        if (request.Terminal) arguments.Add("-t");
        else if (request.Stdin)
        {
            if (!request.StdinOnce) arguments.Add("--leave-stdin-open");
            arguments.Add("-i");
        }
        arguments.AddRange(["--runtime-arg", "--root=" + _runc.Root]);
        return arguments;
    }

    /// <param name="runDetached">The runtime hull-run-detached is to exec (conmon passes its environment on), or null.</param>
    private ConmonProcess Spawn(List<string> arguments, string workingDirectory, string? runDetached = null)
    {
        var environment = _options.ConmonEnvironment;
        if (runDetached is not null)
            environment = new Dictionary<string, string>(environment ?? new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                ["HULL_OCI_RUNTIME"] = runDetached,
            };
        try
        {
            return ConmonProcess.Spawn(_conmonPath.Value, arguments, workingDirectory, environment);
        }
        catch (SyscallException e)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot start {_conmonPath.Value}: {e.Message}", e);
        }
    }

    private static void ValidateCreate(TaskCreateRequest request)
    {
        if (!Path.IsPathRooted(request.BundlePath))
            throw new HullException(ErrorKind.InvalidArgument, $"bundle path \"{request.BundlePath}\" of container \"{request.Id}\" must be absolute");
        if (!File.Exists(Path.Combine(request.BundlePath, "config.json")))
            throw new HullException(ErrorKind.InvalidArgument, $"bundle \"{request.BundlePath}\" of container \"{request.Id}\" has no config.json");
        if (!Path.IsPathRooted(request.LogPath) || request.LogPath.Contains(':'))
            throw new HullException(ErrorKind.InvalidArgument,
                $"log path \"{request.LogPath}\" of container \"{request.Id}\" must be absolute and must not contain ':'");
    }

    private async Task CleanUpFailedCreateAsync(string id, string bundle, int conmonPid)
    {
        try
        {
            // The monitor may have forked (and written its pid file) after we stopped waiting for it.
            if (conmonPid <= 0) conmonPid = ReadPidFile(Paths.ConmonPidFile(id)) ?? 0;
            if (conmonPid > 0 && ProcessInfo.TryRead(conmonPid) is { Command: "conmon", IsZombie: false })
                Signals.TrySend(conmonPid, Signals.SIGKILL);
            await _runc.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HullException or SyscallException)
        {
            // The marker stays, so a later delete (or the sweep at start) runs the runtime's delete again.
            _logger.LogWarning("cleaning up failed container {Id}: {Message}", id, e.Message);
            RemoveConmonFiles(id, bundle);
            return;
        }
        RemoveTaskFiles(id, bundle);
    }

    private void RemoveConmonFiles(string id, string? bundle)
    {
        foreach (var file in new[] { Paths.ConmonPidFile(id), Paths.ContainerPidFile(id), Paths.PersistExitFile(id), Paths.OomFile(id), Paths.ExitFile(id), Paths.AttachLink(id) })
            TryDelete(file);
        if (bundle is not null)
            foreach (var name in new[] { "ctl", "winsz", "attach", "oom" })
                TryDelete(Path.Combine(bundle, name));
    }

    private TaskExit? TryReadExit(TaskEntry entry)
    {
        if (entry.Exit is { } known) return known;
        var id = entry.Record.Id;
        foreach (var file in new[] { Paths.ExitFile(id), Paths.PersistExitFile(id) })
        {
            if (!File.Exists(file)) continue; // the common case while it runs (status calls ask), without an exception
            string text;
            DateTime modified;
            try
            {
                text = File.ReadAllText(file);
                modified = File.GetLastWriteTimeUtc(file);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                continue;
            }
            if (!int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int code)) continue;
            var exit = new TaskExit(code, new DateTimeOffset(modified, TimeSpan.Zero), DetectOom(entry.Record));
            entry.Exit = exit;
            return exit;
        }
        return null;
    }

    private TaskExit LostExit(TaskEntry entry)
    {
        var exit = new TaskExit(255, DateTimeOffset.UtcNow, DetectOom(entry.Record))
        {
            Message = $"conmon of container \"{entry.Record.Id}\" is gone and recorded no exit code",
        };
        entry.Exit = exit;
        return exit;
    }

    /// <summary>conmon's oom file (it watches the container's memory cgroup), or the cgroup's own OOM kill counter.</summary>
    private bool DetectOom(TaskRecord record)
    {
        if (File.Exists(Paths.OomFile(record.Id))) return true;
        try
        {
            return (record.CgroupV1 is not null || record.CgroupUnified is not null) &&
                   CgroupStatsReader.ReadOomKills(new CgroupPaths(record.CgroupUnified, record.CgroupV1 ?? [])) > 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool ConmonAlive(TaskRecord record) =>
        record.ConmonPid <= 0 || ProcessInfo.IsAlive(record.ConmonPid, NonZero(record.ConmonStartTime));

    private static PidFd? OpenIfSame(int pid, ulong startTime)
    {
        var pidfd = PidFd.TryOpen(pid);
        if (pidfd is null) return null;
        // Checked after opening: from here on the pidfd pins this very process.
        if (ProcessInfo.IsAlive(pid, NonZero(startTime))) return pidfd;
        pidfd.Dispose();
        return null;
    }

    private static ulong? NonZero(ulong value) => value == 0 ? null : value;

    private static CgroupPaths? TryReadCgroups(int pid)
    {
        try
        {
            return CgroupPaths.ForProcess(pid, CgroupLayout.Detect());
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static int? ReadPidFile(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static RuntimeStatus ParseStatus(string status) => status switch
    {
        "created" or "creating" => RuntimeStatus.Created,
        "running" => RuntimeStatus.Running,
        "paused" or "pausing" => RuntimeStatus.Paused,
        "stopped" => RuntimeStatus.Stopped,
        _ => RuntimeStatus.Unknown,
    };

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// After the runtime's delete: conmon's files, the runtime-state marker, then the task's directory once nothing else
    /// is in it (the bundle may still be). A kill -9 in the middle of a write of task.json leaves its temporary file
    /// there, which would keep the directory forever: it goes too.
    /// </summary>
    private void RemoveTaskFiles(string id, string? bundle)
    {
        RemoveConmonFiles(id, bundle);
        TryDelete(Paths.RuntimeStateMarker(id));
        AtomicFile.DeleteLeftovers(Paths.RecordFile(id));
        var dir = Paths.TaskDirectory(id);
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
        catch (IOException)
        {
        }
    }
}
