using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Hull.Core;
using Hull.Core.Events;
using Hull.Images;
using Hull.Linux;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox;
using Hull.Sandbox.Controller;
using Hull.Sandbox.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Cri.Containers;

/// <summary>What CreateContainer is given, in domain terms (Hull.Cri translates the CRI message).</summary>
public sealed record ContainerCreateRequest(string SandboxId, string Image, ContainerConfig Config);

/// <summary>A pod and its containers at the moment of a <see cref="ContainerEvent"/> (its <see cref="ContainerEvent.Snapshot"/>).</summary>
public sealed record ContainerEventSnapshot(SandboxRecord? Pod, IReadOnlyList<ContainerRecord> Containers);

/// <summary>What ListContainers filters on; null fields match everything.</summary>
public sealed record ContainerFilter(string? IdPrefix = null, ContainerState? State = null, string? SandboxIdPrefix = null,
    IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>
/// Containers of every pod: create (image → snapshot → OCI spec → conmon + runc create → persist), start, stop, remove,
/// status, exec and restart recovery. Each container has its own lock; list and status read the in-memory index and
/// never wait on a busy container. Processes are reached only through the pod's task endpoint
/// (<see cref="SandboxManager.Tasks"/>).
/// </summary>
public sealed class ContainerManager
{
    private static readonly ActivitySource Activity = new("Hull.Cri");

    private readonly ContainerStore _store;
    private readonly SandboxManager _sandboxes;
    private readonly ImageManager _images;
    private readonly SpecBuilder _specs;
    private readonly EventBroadcaster<ContainerEvent> _events;
    private readonly string _stateDirectory;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Entry> _index = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();

    /// <param name="stateDirectory">hulld's state directory; bundles go to containers/&lt;id&gt;/bundle under it.</param>
    public ContainerManager(ContainerStore store, SandboxManager sandboxes, ImageManager images, SpecBuilder specs,
        EventBroadcaster<ContainerEvent> events, string stateDirectory, ILogger<ContainerManager>? logger = null)
    {
        _store = store;
        _sandboxes = sandboxes;
        _images = images;
        _specs = specs;
        _events = events;
        _stateDirectory = stateDirectory;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The cgroup driver of a runtime handler ("" is the default handler); null uses the spec builder's.</summary>
    public Func<string, CgroupDriver>? CgroupDriverFor { get; init; }

    private sealed class Entry(ContainerRecord record)
    {
        public volatile ContainerRecord Record = record;
        public readonly SemaphoreSlim Lock = new(1, 1);
        public bool Removed;
    }

    /// <summary>A new container id: 64 hex digits, as containerd makes them.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public string BundleDirectory(string id) => Path.Combine(_stateDirectory, "containers", id, "bundle");

    private static string NameKey(string name, uint attempt, PodIdentity pod) => $"{name}_{pod.Name}_{pod.Namespace}_{pod.Uid}_{attempt}";

    // ---------------------------------------------------------------- create

    /// <summary>Creates a container in a ready pod; returns its id. On failure nothing is left behind.</summary>
    public async Task<string> CreateAsync(ContainerCreateRequest request, CancellationToken cancellationToken)
    {
        using var activity = Activity.StartActivity("CreateContainer");
        var config = request.Config;
        if (string.IsNullOrEmpty(config.Name))
            throw new HullException(ErrorKind.InvalidArgument, "CreateContainer needs container metadata with a name");
        if (string.IsNullOrEmpty(request.Image))
            throw new HullException(ErrorKind.InvalidArgument, $"container \"{config.Name}\" names no image");
        var (pod, _) = await _sandboxes.StatusAsync(request.SandboxId, verbose: false, cancellationToken).ConfigureAwait(false);
        if (pod.State != SandboxState.Ready)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{pod.Id}\" is not ready (it was stopped or is being created); cannot create container \"{config.Name}\" in it");
        var image = await _images.FindAsync(request.Image, cancellationToken).ConfigureAwait(false)
                    ?? throw new HullException(ErrorKind.NotFound, $"image \"{request.Image}\" not found; pull it before creating container \"{config.Name}\"");
        var imageConfig = await _images.ConfigAsync(image, cancellationToken).ConfigureAwait(false);
        var tasks = _sandboxes.Tasks(pod.Id);

        string id = NewId();
        string nameKey = NameKey(config.Name, config.Attempt, pod.Spec.Identity);
        if (!_names.TryAdd(nameKey, id))
            throw new HullException(ErrorKind.AlreadyExists,
                $"container name \"{nameKey}\" is already in use by container \"{_names.GetValueOrDefault(nameKey)}\"");

        string bundle = BundleDirectory(id);
        string rootfs = Path.Combine(bundle, "rootfs");
        string logPath = LogPathFor(pod, config, bundle);
        var execution = imageConfig.Config;
        var record = new ContainerRecord
        {
            Id = id,
            SandboxId = pod.Id,
            Name = config.Name,
            Attempt = config.Attempt,
            Image = request.Image,
            ImageId = image.Id,
            ImageRef = image.RepoDigests.FirstOrDefault() ?? image.Id,
            Labels = new Dictionary<string, string>(config.Labels, StringComparer.Ordinal),
            Annotations = new Dictionary<string, string>(config.Annotations, StringComparer.Ordinal),
            Mounts = config.Mounts.Select(m => new ContainerMountInfo(m.ContainerPath, m.HostPath, m.Readonly, m.Propagation.ToString())).ToList(),
            LogPath = logPath,
            RequestedLogPath = config.LogPath ?? "",
            BundlePath = bundle,
            Snapshotter = _images.Snapshotter.Name,
            StopSignal = Signals.TryParse(config.StopSignal) ?? Signals.TryParse(execution.StopSignal) ?? Signals.SIGTERM,
            Tty = config.Tty,
            Stdin = config.Stdin,
            StdinOnce = config.StdinOnce,
            State = ContainerState.Creating,
            CreatedAt = DateTimeOffset.UtcNow,
            Resources = ToTaskResources(config.Resources),
        };
        var entry = new Entry(record);
        bool snapshotPrepared = false, mounted = false, taskCreated = false;
        try
        {
            // Persisted first: the row keeps the snapshot from the garbage collector and lets the next start undo a crash.
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            var mounts = await _images.Snapshotter.PrepareAsync(id, image.ChainId,
                new Dictionary<string, string> { ["io.hull.container"] = id }, cancellationToken).ConfigureAwait(false);
            snapshotPrepared = true;
            Directory.CreateDirectory(rootfs);
            Mounts.MountAll(mounts, rootfs);
            mounted = true;

            var spec = await _specs.BuildAsync(new ContainerSpecRequest
            {
                ContainerId = id,
                RootfsPath = rootfs,
                ImageName = request.Image,
                Container = config,
                Image = new ImageConfig
                {
                    Entrypoint = execution.Entrypoint ?? [],
                    Cmd = execution.Cmd ?? [],
                    Env = execution.Env ?? [],
                    WorkingDir = execution.WorkingDir,
                    User = execution.User,
                    StopSignal = execution.StopSignal,
                    Volumes = execution.Volumes?.Keys.ToList() ?? [],
                    Labels = execution.Labels ?? new Dictionary<string, string>(),
                },
                Sandbox = SandboxContextOf(pod) with { CgroupDriver = CgroupDriverFor?.Invoke(pod.Spec.RuntimeHandler) },
                ContainerDirectory = bundle,
            }, cancellationToken).ConfigureAwait(false);
            await SpecWriter.WriteAsync(spec, bundle, cancellationToken).ConfigureAwait(false);
            if (spec.Process?.User is { } user)
                record = record with
                {
                    User = new ContainerUserInfo(user.Uid, user.Gid, user.AdditionalGids?.Select(g => (long)g).ToList() ?? []),
                };

            var info = await tasks.CreateAsync(new TaskCreateRequest(id, bundle, logPath)
            {
                Name = config.Name,
                Terminal = config.Tty,
                Stdin = config.Stdin,
                StdinOnce = config.StdinOnce,
            }, cancellationToken).ConfigureAwait(false);
            taskCreated = true;
            record = record with { State = ContainerState.Created, Pid = info.Pid };
            await _store.PutAsync(record, CancellationToken.None).ConfigureAwait(false);
            entry.Record = record;
            _index[id] = entry;
            _logger.LogInformation("container {Id} ({Name}) created in pod {Pod}", id, config.Name, pod.Id);
            Publish(record, ContainerEventKind.Created);
            return id;
        }
        catch (Exception e)
        {
            _logger.LogWarning("CreateContainer {Name} in pod {Pod}: {Error}; undoing", config.Name, pod.Id, e.Message);
            await UndoAsync(id, tasks, taskCreated, mounted, snapshotPrepared, bundle).ConfigureAwait(false);
            _names.TryRemove(new KeyValuePair<string, string>(nameKey, id));
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                throw new HullException(ErrorKind.DeadlineExceeded,
                    $"CreateContainer for \"{config.Name}\" was cancelled or timed out; what it did was undone", e);
            throw;
        }
    }

    /// <summary>Undoes a create in reverse; failures are logged, and the row stays (as 'creating') for the next start to retry.</summary>
    private async Task UndoAsync(string id, ITaskService? tasks, bool taskCreated, bool mounted, bool snapshotPrepared, string bundle)
    {
        try
        {
            if (taskCreated && tasks is not null) await tasks.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
            if (mounted || Directory.Exists(Path.Combine(bundle, "rootfs"))) Mounts.UnmountAll(Path.Combine(bundle, "rootfs"), detach: true);
            RemoveBundle(id, bundle);
            if (snapshotPrepared || await _images.Snapshotter.TryStatAsync(id, CancellationToken.None).ConfigureAwait(false) is not null)
                await _images.Snapshotter.RemoveAsync(id, CancellationToken.None).ConfigureAwait(false);
            await _store.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception undo)
        {
            _logger.LogError("container {Id}: undoing a failed create failed: {Error}", id, undo.Message);
        }
    }

    /// <summary>Deletes the bundle and the container's state directory, never following a rootfs that is still mounted.</summary>
    private void RemoveBundle(string id, string bundle)
    {
        string rootfs = Path.Combine(bundle, "rootfs");
        if (Directory.Exists(rootfs))
        {
            Mounts.UnmountAll(rootfs, detach: true);
            Directory.Delete(rootfs, recursive: false); // fails (rather than deleting the container's files) if anything is still there
        }
        if (Directory.Exists(bundle)) Directory.Delete(bundle, recursive: true);
        string dir = Path.GetDirectoryName(bundle)!;
        if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        // The fallback log directory (a container without a pod log directory) went with the bundle.
    }

    private static string LogPathFor(SandboxRecord pod, ContainerConfig config, string bundle)
    {
        if (pod.Spec.LogDirectory is { Length: > 0 } dir && config.LogPath is { Length: > 0 } relative)
        {
            string full = Path.GetFullPath(Path.Combine(dir, relative));
            if (full.Contains(':'))
                throw new HullException(ErrorKind.InvalidArgument, $"log path \"{full}\" of container \"{config.Name}\" contains ':', which conmon cannot take");
            return full;
        }
        return Path.Combine(bundle, "container.log");
    }

    private static SandboxContext SandboxContextOf(SandboxRecord pod)
    {
        var i = pod.Instance;
        var s = pod.Spec;
        return new SandboxContext
        {
            SandboxId = pod.Id,
            PodName = s.Identity.Name,
            PodNamespace = s.Identity.Namespace,
            PodUid = s.Identity.Uid,
            Hostname = s.Hostname,
            Network = i.NetNsPath.Length > 0 ? NamespaceRef.At(i.NetNsPath) : NamespaceRef.Host,
            Ipc = i.IpcNsPath.Length > 0 ? NamespaceRef.At(i.IpcNsPath) : NamespaceRef.Host,
            Uts = i.UtsNsPath.Length > 0 ? NamespaceRef.At(i.UtsNsPath) : NamespaceRef.Host,
            SharedPidNamespacePath = i.PidNsPath.Length > 0 ? i.PidNsPath : null,
            CgroupParent = i.CgroupParent.Length > 0 ? i.CgroupParent : null,
            Privileged = s.Privileged,
            HostsPath = i.HostsPath.Length > 0 ? i.HostsPath : null,
            ResolvConfPath = i.ResolvConfPath.Length > 0 ? i.ResolvConfPath : null,
            HostnamePath = i.HostnamePath.Length > 0 ? i.HostnamePath : null,
            ShmPath = i.ShmPath.Length > 0 ? i.ShmPath : null,
            Sysctls = s.Sysctls,
        };
    }

    private static TaskResources? ToTaskResources(LinuxResources? r) => r is null ? null : new TaskResources
    {
        CpuShares = r.CpuShares > 0 ? (ulong)r.CpuShares : null,
        CpuQuota = r.CpuQuota != 0 ? r.CpuQuota : null,
        CpuPeriod = r.CpuPeriod > 0 ? (ulong)r.CpuPeriod : null,
        CpusetCpus = string.IsNullOrEmpty(r.CpusetCpus) ? null : r.CpusetCpus,
        CpusetMems = string.IsNullOrEmpty(r.CpusetMems) ? null : r.CpusetMems,
        MemoryLimitBytes = r.MemoryLimitInBytes > 0 ? r.MemoryLimitInBytes : null,
        MemorySwapLimitBytes = r.MemorySwapLimitInBytes > 0 ? r.MemorySwapLimitInBytes : null,
        Unified = r.Unified.Count > 0 ? r.Unified : null,
    };

    // ---------------------------------------------------------------- start / stop / remove

    public async Task StartAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = Find(idOrPrefix);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = entry.Record;
            if (entry.Removed) throw new HullException(ErrorKind.NotFound, $"container \"{record.Id}\" not found");
            if (record.State != ContainerState.Created)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}, not created; it cannot be started");
            var tasks = _sandboxes.Tasks(record.SandboxId);
            // Taken before runc start, so a process that exits at once never finishes before it started.
            var startedAt = DateTimeOffset.UtcNow;
            try
            {
                await tasks.StartAsync(record.Id, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                // A container that failed to start is reported exited, as containerd does, so the kubelet can remove it.
                var failed = record with
                {
                    State = ContainerState.Exited, FinishedAt = DateTimeOffset.UtcNow, StartedAt = null, ExitCode = 128,
                    Reason = "StartError", Message = e.Message,
                };
                await _store.PutAsync(failed, CancellationToken.None).ConfigureAwait(false);
                entry.Record = failed;
                Publish(failed, ContainerEventKind.Stopped);
                throw;
            }
            var started = record with { State = ContainerState.Running, StartedAt = startedAt };
            await _store.PutAsync(started, CancellationToken.None).ConfigureAwait(false);
            entry.Record = started;
            _logger.LogInformation("container {Id} started", record.Id);
            Publish(started, ContainerEventKind.Started);
            Watch(entry, tasks);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>Records the container's exit as soon as conmon reports it.</summary>
    private void Watch(Entry entry, ITaskService tasks)
    {
        string id = entry.Record.Id;
        _ = Task.Run(async () =>
        {
            try
            {
                var exit = await tasks.WaitAsync(id, _shutdown.Token).ConfigureAwait(false);
                await entry.Lock.WaitAsync(_shutdown.Token).ConfigureAwait(false);
                try
                {
                    if (!entry.Removed && entry.Record.State == ContainerState.Running) await RecordExitAsync(entry, exit).ConfigureAwait(false);
                }
                finally
                {
                    entry.Lock.Release();
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                _logger.LogDebug("container {Id}: watching for its exit ended: {Error}", id, e.Message);
            }
        });
    }

    /// <summary>Call with the entry's lock held.</summary>
    private async Task RecordExitAsync(Entry entry, TaskExit exit)
    {
        var exited = entry.Record with
        {
            State = ContainerState.Exited,
            // conmon's exit file time has coarser resolution than the start time; never report an end before the start.
            FinishedAt = entry.Record.StartedAt is { } started && exit.FinishedAt < started ? started : exit.FinishedAt,
            ExitCode = exit.ExitCode,
            Reason = exit.Reason,
            Message = exit.Message ?? "",
        };
        await _store.PutAsync(exited, CancellationToken.None).ConfigureAwait(false);
        entry.Record = exited;
        _logger.LogInformation("container {Id} exited with code {Code}", exited.Id, exited.ExitCode);
        Publish(exited, ContainerEventKind.Stopped);
    }

    /// <summary>Stops the container with its stop signal, then SIGKILL after <paramref name="timeout"/>. Idempotent.</summary>
    public async Task StopAsync(string idOrPrefix, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var entry = Find(idOrPrefix);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await StopLockedAsync(entry, timeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private async Task StopLockedAsync(Entry entry, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var record = entry.Record;
        if (entry.Removed || record.State is ContainerState.Exited) return;
        ITaskService tasks;
        try
        {
            tasks = _sandboxes.Tasks(record.SandboxId);
        }
        catch (HullException e) when (e.Kind == ErrorKind.NotFound)
        {
            return; // its pod is gone, and with it the task
        }
        if (record.State == ContainerState.Created) timeout = TimeSpan.Zero; // never started: nothing to stop gracefully
        TaskExit exit;
        try
        {
            exit = await tasks.StopAsync(record.Id, timeout, record.StopSignal, cancellationToken).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.NotFound)
        {
            exit = new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = "the container's task was not found" };
        }
        await RecordExitAsync(entry, exit).ConfigureAwait(false);
    }

    /// <summary>Removes the container: kills it if it runs, deletes the task, bundle, snapshot and record. Idempotent.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = TryFind(idOrPrefix);
        if (entry is null) return;
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (entry.Removed) return;
            await StopLockedAsync(entry, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            var record = entry.Record;
            ITaskService? tasks = null;
            try
            {
                tasks = _sandboxes.Tasks(record.SandboxId);
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }
            if (tasks is not null) await tasks.DeleteAsync(record.Id, cancellationToken).ConfigureAwait(false);
            RemoveBundle(record.Id, record.BundlePath);
            if (await _images.Snapshotter.TryStatAsync(record.Id, CancellationToken.None).ConfigureAwait(false) is not null)
                await _images.Snapshotter.RemoveAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            await _store.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            entry.Removed = true;
            _index.TryRemove(record.Id, out _);
            if (_sandboxes.List(new SandboxFilter(record.SandboxId)).FirstOrDefault() is { } pod)
                _names.TryRemove(new KeyValuePair<string, string>(NameKey(record.Name, record.Attempt, pod.Spec.Identity), record.Id));
            else
                foreach (var (key, value) in _names) if (value == record.Id) _names.TryRemove(key, out _);
            _logger.LogInformation("container {Id} removed", record.Id);
            Publish(record, ContainerEventKind.Deleted);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>For <see cref="SandboxManager.StopContainers"/>: kills every container of the pod.</summary>
    public async Task StopPodContainersAsync(string sandboxId, CancellationToken cancellationToken)
    {
        foreach (var entry in _index.Values.Where(e => e.Record.SandboxId == sandboxId).ToList())
            await StopAsync(entry.Record.Id, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>For <see cref="SandboxManager.RemoveContainers"/>: removes every container of the pod.</summary>
    public async Task RemovePodContainersAsync(string sandboxId, CancellationToken cancellationToken)
    {
        foreach (var entry in _index.Values.Where(e => e.Record.SandboxId == sandboxId).ToList())
            await RemoveAsync(entry.Record.Id, cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- status / list / exec / resources

    /// <summary>The container as the index has it (its exit picked up if conmon has just recorded it).</summary>
    public ContainerRecord Status(string idOrPrefix) => Find(idOrPrefix).Record;

    /// <summary>A snapshot of the index, filtered; never waits on a container.</summary>
    public IReadOnlyList<ContainerRecord> List(ContainerFilter? filter = null)
    {
        var result = new List<ContainerRecord>();
        foreach (var entry in _index.Values)
        {
            var r = entry.Record;
            if (filter is not null)
            {
                if (filter.IdPrefix is { Length: > 0 } prefix && !r.Id.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (filter.State is { } state && r.State != state) continue;
                if (filter.SandboxIdPrefix is { Length: > 0 } pod && !r.SandboxId.StartsWith(pod, StringComparison.Ordinal)) continue;
                if (filter.Labels is { } labels && labels.Any(l => !r.Labels.TryGetValue(l.Key, out var v) || v != l.Value)) continue;
            }
            result.Add(r);
        }
        result.Sort((a, b) => a.CreatedAt.CompareTo(b.CreatedAt));
        return result;
    }

    /// <summary>Runs a command in a running container. A timeout is DeadlineExceeded (the command's processes are killed).</summary>
    public async Task<ExecSyncResult> ExecSyncAsync(string idOrPrefix, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var record = Find(idOrPrefix).Record;
        if (record.State != ContainerState.Running)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}, not running; cannot exec in it");
        var result = await _sandboxes.Tasks(record.SandboxId).ExecSyncAsync(record.Id, command, timeout, cancellationToken).ConfigureAwait(false);
        if (result.TimedOut)
            throw new HullException(ErrorKind.DeadlineExceeded,
                $"command {string.Join(' ', command)} in container \"{record.Id}\" timed out after {timeout.TotalSeconds:0.###} s and was killed");
        return result;
    }

    public async Task UpdateResourcesAsync(string idOrPrefix, TaskResources resources, CancellationToken cancellationToken)
    {
        var entry = Find(idOrPrefix);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = entry.Record;
            if (record.State is not (ContainerState.Created or ContainerState.Running))
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}; its resources cannot be updated");
            // As at create (and as containerd's update re-applies WithResources): no swap unless asked for, so a new memory
            // limit moves memory+swap with it; otherwise cgroup v1 refuses a memory limit above the old memory+swap one.
            if (resources.MemoryLimitBytes is { } limit && resources.MemorySwapLimitBytes is null && _specs.Host.SwapControllerAvailable)
                resources = resources with { MemorySwapLimitBytes = limit };
            await _sandboxes.Tasks(record.SandboxId).UpdateResourcesAsync(record.Id, resources, cancellationToken).ConfigureAwait(false);
            var updated = record with { Resources = Merge(record.Resources, resources) };
            await _store.PutAsync(updated, CancellationToken.None).ConfigureAwait(false);
            entry.Record = updated;
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private static TaskResources Merge(TaskResources? old, TaskResources changes) => old is null ? changes : new TaskResources
    {
        CpuShares = changes.CpuShares ?? old.CpuShares,
        CpuQuota = changes.CpuQuota ?? old.CpuQuota,
        CpuPeriod = changes.CpuPeriod ?? old.CpuPeriod,
        CpusetCpus = changes.CpusetCpus ?? old.CpusetCpus,
        CpusetMems = changes.CpusetMems ?? old.CpusetMems,
        MemoryLimitBytes = changes.MemoryLimitBytes ?? old.MemoryLimitBytes,
        MemorySwapLimitBytes = changes.MemorySwapLimitBytes ?? old.MemorySwapLimitBytes,
        PidsLimit = changes.PidsLimit ?? old.PidsLimit,
        Unified = changes.Unified ?? old.Unified,
    };

    /// <summary>cgroup statistics of a running container, plus its writable layer's usage.</summary>
    public async Task<(CgroupStats Cgroup, long WritableBytes, long WritableInodes)> StatsAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var record = Find(idOrPrefix).Record;
        var stats = _sandboxes.Tasks(record.SandboxId).GetStats(record.Id);
        long bytes = 0, inodes = 0;
        try
        {
            var usage = await _images.Snapshotter.UsageAsync(record.Id, cancellationToken).ConfigureAwait(false);
            (bytes, inodes) = (usage.Size, usage.Inodes);
        }
        catch (HullException) { }
        return (stats, bytes, inodes);
    }

    public async Task ReopenLogAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var record = Find(idOrPrefix).Record;
        if (record.State != ContainerState.Running)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{record.Id}\" is not running; its log cannot be reopened");
        await _sandboxes.Tasks(record.SandboxId).ReopenLogAsync(record.Id, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Publishes a change with a snapshot of the container's pod and all its containers as they are now.</summary>
    private void Publish(ContainerRecord record, ContainerEventKind kind)
    {
        if (_events.SubscriberCount == 0) return; // nobody listens: spare the snapshot
        _events.Publish(new ContainerEvent(record.Id, record.SandboxId, kind, DateTimeOffset.UtcNow)
        {
            Snapshot = SnapshotOf(record.SandboxId),
        });
    }

    /// <summary>The pod (null when it is gone) and its containers from the in-memory indexes; never waits.</summary>
    public ContainerEventSnapshot SnapshotOf(string sandboxId) => new(
        _sandboxes.List(new SandboxFilter(sandboxId)).FirstOrDefault(p => p.Id == sandboxId),
        List(new ContainerFilter(SandboxIdPrefix: sandboxId)).Where(c => c.SandboxId == sandboxId && c.State != ContainerState.Creating).ToList());

    private Entry Find(string idOrPrefix) =>
        TryFind(idOrPrefix) ?? throw new HullException(ErrorKind.NotFound, $"container \"{idOrPrefix}\" not found");

    /// <summary>By full id, or by a unique id prefix.</summary>
    private Entry? TryFind(string idOrPrefix)
    {
        if (string.IsNullOrEmpty(idOrPrefix)) throw new HullException(ErrorKind.InvalidArgument, "a container id is required");
        if (_index.TryGetValue(idOrPrefix, out var entry)) return entry;
        Entry? found = null;
        foreach (var (id, e) in _index)
        {
            if (!id.StartsWith(idOrPrefix, StringComparison.Ordinal)) continue;
            if (found is not null) throw new HullException(ErrorKind.InvalidArgument, $"container id prefix \"{idOrPrefix}\" is ambiguous");
            found = e;
        }
        return found;
    }

    // ---------------------------------------------------------------- restart

    /// <summary>
    /// At start (after the pods are recovered): loads every container, asks its pod's task endpoint what became of it
    /// (running, or exited with conmon's exit code and time), and undoes creates a crash interrupted.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await _store.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            ITaskService? tasks = null;
            try
            {
                tasks = _sandboxes.Tasks(record.SandboxId);
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }

            if (record.State == ContainerState.Creating)
            {
                _logger.LogWarning("container {Id}: hulld stopped while it was being created; undoing it", record.Id);
                await UndoAsync(record.Id, tasks, taskCreated: true, mounted: true, snapshotPrepared: false, record.BundlePath).ConfigureAwait(false);
                continue;
            }
            var recovered = record;
            if (record.State is ContainerState.Created or ContainerState.Running)
            {
                TaskRecovery? found = null;
                try
                {
                    if (tasks is not null) found = await tasks.RecoverAsync(record.Id, cancellationToken).ConfigureAwait(false);
                }
                catch (HullException e)
                {
                    _logger.LogWarning("container {Id}: cannot recover its task: {Error}", record.Id, e.Message);
                }
                if (found is null)
                    recovered = record with
                    {
                        State = ContainerState.Exited, FinishedAt = DateTimeOffset.UtcNow, ExitCode = 255, Reason = "Unknown",
                        Message = "the container's task was not found after hulld restarted",
                    };
                else if (found.Exit is { } exit)
                    recovered = record with
                    {
                        State = ContainerState.Exited, FinishedAt = exit.FinishedAt, ExitCode = exit.ExitCode, Reason = exit.Reason,
                        Message = exit.Message ?? "",
                    };
                if (recovered != record) await _store.PutAsync(recovered, cancellationToken).ConfigureAwait(false);
            }
            var entry = new Entry(recovered);
            _index[record.Id] = entry;
            if (_sandboxes.List(new SandboxFilter(record.SandboxId)).FirstOrDefault() is { } pod)
                _names[NameKey(record.Name, record.Attempt, pod.Spec.Identity)] = record.Id;
            else
                _names[$"{record.Name}_{record.SandboxId}_{record.Attempt}"] = record.Id;
            if (recovered.State == ContainerState.Running && tasks is not null) Watch(entry, tasks);
        }
        _logger.LogInformation("recovered {Count} containers ({Running} running)", _index.Count,
            _index.Values.Count(e => e.Record.State == ContainerState.Running));
    }

    /// <summary>Stops watching for exits (containers keep running).</summary>
    public void Shutdown() => _shutdown.Cancel();
}
