using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;
using Microsoft.Extensions.Logging;
using RpcException = global::Grpc.Core.RpcException;
using StatusCode = global::Grpc.Core.StatusCode;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// The task endpoint of one microVM pod: its containers run under runc in the guest and are reached only through the
/// agent. Create shares the bundle's rootfs and mount sources into the VM, rewrites the OCI config for the guest
/// (<see cref="GuestSpec"/>) and has the agent create the container; the container's output is written to its CRI log
/// here (<see cref="ContainerOutput"/>); its exit arrives through a long-polled WaitProcess. What a restart needs is
/// kept per container in <c>&lt;vm dir&gt;/containers/&lt;id&gt;.json</c>; the guest keeps the processes and their output.
/// </summary>
public sealed class MicroVmTasks : ITaskService, IInteractiveTaskService, IAsyncDisposable
{
    private static readonly TimeSpan OutputDrainGrace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StatsMaxAge = TimeSpan.FromSeconds(1);
    private const int ExecSyncOutputLimit = 16 << 20;

    private readonly string _sandboxId;
    private readonly MicroVm _vm;
    private readonly MicroVmShare _share;
    private readonly string _stateDirectory;
    private readonly TimeSpan _callTimeout;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Container> _containers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();

    public MicroVmTasks(string sandboxId, MicroVm vm, MicroVmShare share, string stateDirectory, TimeSpan callTimeout, ILogger logger)
    {
        _sandboxId = sandboxId;
        _vm = vm;
        _share = share;
        _stateDirectory = stateDirectory;
        _callTimeout = callTimeout;
        _logger = logger;
    }

    /// <summary>What survives a restart of hulld (the rest is asked of the agent).</summary>
    private sealed record PersistedContainer(string Id, string BundlePath, string LogPath, bool Terminal, bool Stdin, bool StdinOnce, DateTimeOffset CreatedAt);

    private sealed class Container(PersistedContainer persisted, JsonObject guestConfig)
    {
        public PersistedContainer Persisted { get; } = persisted;
        public JsonObject GuestConfig { get; } = guestConfig;
        public int Pid;
        public uint StdinStream;
        public volatile RuntimeStatus Status = RuntimeStatus.Created;
        public volatile TaskExit? Exit;
        public readonly TaskCompletionSource<TaskExit> Exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public ContainerOutput? Output;
        public volatile CgroupStats? Stats;
        public int StatsRefreshing;
    }

    private AgentConnection Agent => _vm.Agent;

    private Task<T> CallAsync<T>(string what, Func<Agent.AgentClient, DateTime, CancellationToken, global::Grpc.Core.AsyncUnaryCall<T>> call,
        CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        Agent.CallAsync($"pod sandbox \"{_sandboxId}\": {what}", call, timeout ?? _callTimeout, cancellationToken);

    private Container Get(string id) =>
        _containers.TryGetValue(id, out var container) ? container
            : throw new HullException(ErrorKind.NotFound, $"container \"{id}\" not found in microVM pod \"{_sandboxId}\"");

    // ---------------------------------------------------------------- create, start

    public async Task<TaskInfo> CreateAsync(TaskCreateRequest request, CancellationToken cancellationToken = default)
    {
        string id = request.Id;
        var persisted = new PersistedContainer(id, request.BundlePath, request.LogPath, request.Terminal, request.Stdin, request.StdinOnce,
            DateTimeOffset.UtcNow);
        var guestConfig = ReadGuestConfig(persisted);
        if (!_containers.TryAdd(id, new Container(persisted, guestConfig.Config)))
            throw new HullException(ErrorKind.AlreadyExists, $"container \"{id}\" already exists in microVM pod \"{_sandboxId}\"");
        var container = _containers[id];
        try
        {
            foreach (var shared in guestConfig.Shares)
            {
                if (shared.MountIndex is { } index) _share.ExposeMount(id, index, shared.HostPath);
                else _share.ExposeRootfs(id, shared.HostPath);
            }
            var started = await CallAsync($"create container \"{id}\"", (c, d, ct) => c.CreateContainerAsync(new CreateContainerRequest
            {
                ContainerId = id,
                OciConfig = ByteString.CopyFromUtf8(guestConfig.Config.ToJsonString()),
                Terminal = request.Terminal,
                Stdin = request.Stdin,
            }, deadline: d, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            Attach(container, started.Pid, started);
            Persist(persisted);
            _logger.LogInformation("microVM pod {Pod}: container {Id} created (guest pid {Pid})", _sandboxId, id, started.Pid);
            return new TaskInfo(id, container.Pid, _vm.Pid, request.BundlePath, request.LogPath, persisted.CreatedAt);
        }
        catch
        {
            // The agent's delete is idempotent and also clears what a failed runc create left in the guest.
            await ForgetAsync(container, deleteInGuest: true).ConfigureAwait(false);
            throw;
        }
    }

    private static (JsonObject Config, IReadOnlyList<SharedPath> Shares) ReadGuestConfig(PersistedContainer persisted)
    {
        var path = Path.Combine(persisted.BundlePath, "config.json");
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(path))?.AsObject()
                     ?? throw new HullException(ErrorKind.InvalidArgument, $"{path} of container \"{persisted.Id}\" is empty");
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"cannot read {path} of container \"{persisted.Id}\": {e.Message}", e);
        }
        return GuestSpec.Rewrite(config, persisted.BundlePath, persisted.Id);
    }

    /// <summary>Wires up a container the agent knows: its output pump and its exit watcher.</summary>
    private void Attach(Container container, uint pid, ProcessStarted streams, ProcessExit? exited = null)
    {
        container.Pid = (int)pid;
        container.StdinStream = streams.StdinStream;
        container.Output = new ContainerOutput(Agent, container.Persisted.Id, container.Persisted.LogPath, streams.StdoutStream,
            streams.StderrStream, _logger);
        if (exited is not null) RecordExit(container, exited);
        else _ = WatchAsync(container);
    }

    private async Task WatchAsync(Container container)
    {
        string id = container.Persisted.Id;
        try
        {
            var exit = await Agent.Client.WaitProcessAsync(new ProcessRequest { ContainerId = id }, cancellationToken: _stop.Token).ConfigureAwait(false);
            RecordExit(container, exit);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && !_stop.IsCancellationRequested)
        {
            // The connection ended while hulld runs: the VM is gone, and the container with it.
            await _vm.Exited.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            SetExit(container, new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = $"the microVM of pod \"{_sandboxId}\" exited" });
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or TimeoutException or HullException)
        {
            _logger.LogDebug("container {Id}: no longer watching for its exit: {Error}", id, e.Message);
        }
    }

    private static void RecordExit(Container container, ProcessExit exit)
    {
        // The guest clock may run ahead of the host's under TCG; an exit is never in the future.
        var at = DateTimeOffset.FromUnixTimeMilliseconds(exit.ExitedAtUnixNano / 1_000_000);
        if (at > DateTimeOffset.UtcNow) at = DateTimeOffset.UtcNow;
        SetExit(container, new TaskExit(exit.ExitCode, at, exit.OomKilled));
    }

    private static void SetExit(Container container, TaskExit exit)
    {
        container.Exit ??= exit;
        container.Status = RuntimeStatus.Stopped;
        container.Exited.TrySetResult(container.Exit);
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        await CallAsync($"start container \"{id}\"", (c, d, ct) => c.StartContainerAsync(new ContainerRequest { ContainerId = id }, deadline: d,
            cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        if (container.Exit is null) container.Status = RuntimeStatus.Running;
        GetStats(id); // a first reading, so the kubelet's first stats poll already sees the guest's numbers
    }

    // ---------------------------------------------------------------- signals, waiting, state

    public async Task KillAsync(string id, int signal, bool all = false, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        if (container.Exit is not null) return;
        await CallAsync($"signal {signal} to container \"{id}\"", (c, d, ct) => c.SignalProcessAsync(new SignalProcessRequest
        {
            ContainerId = id, Signal = (uint)signal, All = all,
        }, deadline: d, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
    }

    public Task<TaskExit> WaitAsync(string id, CancellationToken cancellationToken = default) =>
        Get(id).Exited.Task.WaitAsync(cancellationToken);

    public TaskExit? TryGetExit(string id) => _containers.TryGetValue(id, out var c) ? c.Exit : null;

    public async Task<TaskExit> StopAsync(string id, TimeSpan timeout, int signal = Signals.SIGTERM, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        if (container.Exit is { } done) return done;
        if (container.Status == RuntimeStatus.Created) signal = Signals.SIGKILL; // never started: nothing to stop gracefully
        await KillAsync(id, signal, cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            return await container.Exited.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogInformation("container {Id} did not stop within {Timeout} after signal {Signal}; killing it", id, timeout, signal);
        }
        await KillAsync(id, Signals.SIGKILL, all: true, cancellationToken).ConfigureAwait(false);
        return await container.Exited.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
    }

    public Task<TaskState> StateAsync(string id, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        return Task.FromResult(new TaskState(id, container.Exit is null ? container.Status : RuntimeStatus.Stopped, container.Pid, container.Exit));
    }

    // ---------------------------------------------------------------- delete

    public async Task DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        if (_containers.TryGetValue(id, out var container)) await ForgetAsync(container, deleteInGuest: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the container in the guest (when the VM still runs), stops its output, unshares its paths.</summary>
    private async Task ForgetAsync(Container container, bool deleteInGuest, CancellationToken cancellationToken = default)
    {
        string id = container.Persisted.Id;
        if (deleteInGuest && !_vm.HasExited)
        {
            try
            {
                await CallAsync($"delete container \"{id}\"", (c, d, ct) => c.DeleteContainerAsync(new ContainerRequest { ContainerId = id }, deadline: d,
                    cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e) when (e.Kind is ErrorKind.NotFound || _vm.HasExited) { }
        }
        if (container.Output is { } output) await output.DrainAndStopAsync(OutputDrainGrace).ConfigureAwait(false);
        SetExit(container, container.Exit ?? new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = "deleted before it exited" });
        _share.RemoveContainer(id);
        File.Delete(PersistedPath(id));
        _containers.TryRemove(id, out _);
    }

    // ---------------------------------------------------------------- exec

    public async Task<ExecSyncResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await using var exec = (AgentExec)await StartExecAsync(id, new InteractiveExecRequest(command, Tty: false, Stdin: false, Stdout: true, Stderr: true),
            cancellationToken).ConfigureAwait(false);
        var stdout = ReadAllAsync(exec.Stdout!, cancellationToken);
        var stderr = ReadAllAsync(exec.Stderr!, cancellationToken);
        bool timedOut = false;
        int code;
        try
        {
            code = timeout > TimeSpan.Zero
                ? await exec.Exited.WaitAsync(timeout, cancellationToken).ConfigureAwait(false)
                : await exec.Exited.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            timedOut = true;
            exec.Kill();
            code = -1;
        }
        await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(OutputDrainGrace, cancellationToken)).ConfigureAwait(false);
        var (outBytes, outCut) = stdout.IsCompletedSuccessfully ? stdout.Result : ([], true);
        var (errBytes, errCut) = stderr.IsCompletedSuccessfully ? stderr.Result : ([], true);
        return new ExecSyncResult(code, outBytes, errBytes, timedOut, outCut || errCut);
    }

    private static async Task<(byte[] Bytes, bool Truncated)> ReadAllAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        bool truncated = false;
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            int keep = (int)Math.Min(n, ExecSyncOutputLimit - buffer.Length);
            if (keep > 0) buffer.Write(chunk, 0, keep);
            truncated |= keep < n;
        }
        return (buffer.ToArray(), truncated);
    }

    public async Task<InteractiveExec> StartExecAsync(string id, InteractiveExecRequest request, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        if (request.Command.Count == 0) throw new HullException(ErrorKind.InvalidArgument, $"exec in container \"{id}\" needs a command");
        if (container.Exit is not null || container.Status != RuntimeStatus.Running)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" is not running");
        var execId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var process = GuestSpec.ExecProcess(container.GuestConfig, id, request.Command, request.Tty, request.InitialSize);
        var started = await CallAsync($"exec in container \"{id}\"", (c, d, ct) => c.ExecProcessAsync(new ExecProcessRequest
        {
            ContainerId = id,
            ExecId = execId,
            OciProcess = ByteString.CopyFromUtf8(process.ToJsonString()),
            Terminal = request.Tty,
            Stdin = request.Stdin,
        }, deadline: d, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        return new AgentExec(Agent, id, execId, started, request, _callTimeout, _logger);
    }

    public async Task<AttachConnection> AttachAsync(string id, CancellationToken cancellationToken = default)
    {
        var container = Get(id);
        if (container.Exit is not null || container.Output is not { } output)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{id}\" has exited; cannot attach to it");
        var stdin = container.StdinStream != 0 ? new AgentStream(Agent, container.StdinStream, false, true, _callTimeout) : null;
        return await MicroVmAttach.OpenAsync(output, stdin, container.Persisted.StdinOnce, Path.Combine(_stateDirectory, $"{id}.ctl"), _logger,
            cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- resources, stats, logs

    public async Task UpdateResourcesAsync(string id, TaskResources resources, CancellationToken cancellationToken = default)
    {
        Get(id);
        await CallAsync($"update container \"{id}\"", (c, d, ct) => c.UpdateContainerAsync(new UpdateContainerRequest
        {
            ContainerId = id, OciResources = ByteString.CopyFrom(Hull.Runtime.Spec.OciJson.SerializeToUtf8Bytes(resources.ToOci())),
        }, deadline: d, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The last reading from the guest (the interface is synchronous, the agent is not): a reading older than a second
    /// is refreshed in the background, so the kubelet's periodic polls see values at most one poll old.
    /// </summary>
    public CgroupStats GetStats(string id)
    {
        var container = Get(id);
        var stats = container.Stats;
        if ((stats is null || DateTimeOffset.UtcNow - stats.Timestamp > StatsMaxAge) && container.Exit is null &&
            Interlocked.Exchange(ref container.StatsRefreshing, 1) == 0)
            _ = Task.Run(async () =>
            {
                try
                {
                    var s = await CallAsync($"stats of container \"{id}\"", (c, d, ct) => c.StatsAsync(new ContainerRequest { ContainerId = id },
                        deadline: d, cancellationToken: ct), _stop.Token, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
                    container.Stats = new CgroupStats(DateTimeOffset.UtcNow, s.CpuUsageNanos, s.MemoryUsageBytes, s.MemoryWorkingSetBytes, 0,
                        s.MemoryLimitBytes == 0 ? null : s.MemoryLimitBytes, 0, 0, 0, s.Pids);
                }
                catch (Exception e) when (e is HullException or OperationCanceledException)
                {
                    _logger.LogDebug("container {Id}: stats: {Error}", id, e.Message);
                }
                finally
                {
                    Volatile.Write(ref container.StatsRefreshing, 0);
                }
            });
        return stats ?? CgroupStats.None();
    }

    public Task ReopenLogAsync(string id, CancellationToken cancellationToken = default)
    {
        Get(id).Output?.Reopen();
        return Task.CompletedTask;
    }

    // ---------------------------------------------------------------- restart

    public Task<TaskRecovery> RecoverAsync(string id, CancellationToken cancellationToken = default)
    {
        if (!_containers.TryGetValue(id, out var container))
            return Task.FromResult(new TaskRecovery(id, RuntimeStatus.Stopped, 0, _vm.Pid, ConmonAlive: false,
                new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = $"the guest of pod \"{_sandboxId}\" does not know the container" }));
        return Task.FromResult(new TaskRecovery(id, container.Exit is null ? container.Status : RuntimeStatus.Stopped, container.Pid, _vm.Pid,
            ConmonAlive: !_vm.HasExited, container.Exit));
    }

    /// <summary>After hulld restarted: takes back every container persisted here that the guest still has.</summary>
    public async Task RecoverAllAsync(CancellationToken cancellationToken)
    {
        var list = await CallAsync("list processes", (c, d, ct) => c.ListProcessesAsync(new Empty(), deadline: d, cancellationToken: ct), cancellationToken)
            .ConfigureAwait(false);
        if (!Directory.Exists(_stateDirectory)) return;
        foreach (var file in Directory.EnumerateFiles(_stateDirectory, "*.json"))
        {
            PersistedContainer? persisted;
            try
            {
                persisted = JsonSerializer.Deserialize<PersistedContainer>(File.ReadAllText(file));
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                _logger.LogWarning("microVM pod {Pod}: cannot read {File}: {Error}", _sandboxId, file, e.Message);
                continue;
            }
            if (persisted is null) continue;
            var info = list.Processes.FirstOrDefault(p => p.ContainerId == persisted.Id && p.ExecId.Length == 0);
            var container = new Container(persisted, ReadGuestConfig(persisted).Config);
            _containers[persisted.Id] = container;
            if (info is null)
            {
                SetExit(container, new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = "the guest does not know the container" });
                continue;
            }
            container.Status = info.Status switch
            {
                ProcessStatus.Running => RuntimeStatus.Running,
                ProcessStatus.Created => RuntimeStatus.Created,
                ProcessStatus.Exited => RuntimeStatus.Stopped,
                _ => RuntimeStatus.Unknown,
            };
            Attach(container, info.Pid, info.Streams ?? new ProcessStarted(), info.Status == ProcessStatus.Exited ? info.Exit : null);
        }
    }

    private string PersistedPath(string id) => Path.Combine(_stateDirectory, id + ".json");

    private void Persist(PersistedContainer persisted)
    {
        Directory.CreateDirectory(_stateDirectory);
        var path = PersistedPath(persisted.Id);
        Linux.AtomicFile.WriteText(path, JsonSerializer.Serialize(persisted));
    }

    /// <summary>The VM is gone: every container that had not exited has now, with the reason.</summary>
    public void VmExited(string why)
    {
        foreach (var container in _containers.Values)
            SetExit(container, new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = why });
    }

    /// <summary>Stops reading and watching (hulld shutting down or the pod going); the guest keeps its state.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var container in _containers.Values)
            if (container.Output is { } output) await output.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Unshares every container's paths (the pod is being removed); the VM is already gone.</summary>
    public void ForgetAll()
    {
        foreach (var id in _containers.Keys)
        {
            _share.RemoveContainer(id);
            File.Delete(PersistedPath(id));
            _containers.TryRemove(id, out _);
        }
    }
}
