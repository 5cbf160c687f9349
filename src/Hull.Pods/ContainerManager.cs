using System.Collections.Concurrent;
using System.Diagnostics;
using Hull.Cdi;
using Hull.Core;
using Hull.Images.Snapshots;
using Hull.Linux.Namespaces;
using Hull.Linux.Processes;
using Hull.Nri;
using Hull.Pods.Events;
using Hull.Pods.Hooks;
using Hull.Pods.Host;
using Hull.Pods.Images;
using Hull.Pods.Index;
using Hull.Pods.Stores;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Controller;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Pods;

/// <summary>What CreateContainer is given, in domain terms (Hull.Cri translates the CRI message).</summary>
public sealed record ContainerCreateRequest(string SandboxId, string Image, ContainerConfig Config);

/// <summary>What ListContainers filters on; null fields match everything.</summary>
public sealed record ContainerFilter(string? IdPrefix = null, ContainerState? State = null, string? SandboxIdPrefix = null,
    IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>
/// Containers of every pod: create (image → snapshot → OCI spec → persist), start (conmon + runc run), stop, remove,
/// status, exec and restart recovery. Each container has its own lock; list and status read the in-memory index and
/// never wait on a busy container. Processes are reached only through the pod's task endpoint. A pod being stopped or
/// removed takes no new containers: a create that races with it fails and leaves nothing (see <see cref="CreateAsync"/>).
/// </summary>
public sealed class ContainerManager
{
    private static readonly ActivitySource Activity = PodsTelemetry.Source;

    private readonly ContainerStore _store;
    private readonly ObjectIndex<ContainerRecord> _index;
    private readonly ObjectIndex<SandboxRecord> _pods;
    private readonly Sandboxers _sandboxers;
    private readonly RuntimeHandlers _handlers;
    private readonly IContainerImages _images;
    private readonly SpecBuilder _specs;
    private readonly IContainerFilesystem _files;
    private readonly LifecycleEvents _events;
    private readonly CdiRegistry? _cdi;
    private readonly NriHooks _nri;
    private readonly ILogger _logger;
    private readonly NameRegistrar _names = new("container");
    private readonly ConcurrentDictionary<string, string> _nameOf = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ExitedTaskDeleter _exitedTasks;

    /// <param name="cdi">The CDI registry; null when CDI is off (<c>enable_cdi = false</c>).</param>
    /// <param name="nri">The NRI hooks; null means none.</param>
    public ContainerManager(ContainerStore store, ObjectIndex<ContainerRecord> index, ObjectIndex<SandboxRecord> pods, Sandboxers sandboxers,
        RuntimeHandlers handlers, IContainerImages images, SpecBuilder specs, IContainerFilesystem files, LifecycleEvents events,
        ILogger<ContainerManager>? logger = null, CdiRegistry? cdi = null, NriHooks? nri = null)
    {
        _cdi = cdi;
        _nri = nri ?? NriHooks.None;
        _store = store;
        _index = index;
        _pods = pods;
        _sandboxers = sandboxers;
        _handlers = handlers;
        _images = images;
        _specs = specs;
        _files = files;
        _events = events;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _exitedTasks = new ExitedTaskDeleter(_shutdown.Token);
        PodsTelemetry.Observe(this);
    }

    /// <summary>What the pod and container gauges count.</summary>
    internal (ObjectIndex<SandboxRecord> Pods, ObjectIndex<ContainerRecord> Containers, RuntimeHandlers Handlers) Observed => (_pods, _index, _handlers);

    private static string NameKey(string name, uint attempt, PodIdentity pod) => $"{name}_{pod.Name}_{pod.Namespace}_{pod.Uid}_{attempt}";

    // ---------------------------------------------------------------- create

    /// <summary>
    /// Creates a container in a ready pod; returns its id. On failure nothing is left behind. The new container is in the
    /// index (as 'creating', its lock held) before the pod is checked, and the pod is checked again before the create is
    /// committed: so a StopPodSandbox or RemovePodSandbox that starts meanwhile either makes this create fail and undo
    /// itself, or waits for it and then stops and removes the container.
    /// </summary>
    public async Task<string> CreateAsync(ContainerCreateRequest request, CancellationToken cancellationToken)
    {
        using var activity = Activity.StartActivity("CreateContainer");
        var config = request.Config;
        if (string.IsNullOrEmpty(config.Name))
            throw new HullException(ErrorKind.InvalidArgument, "CreateContainer needs container metadata with a name");
        if (string.IsNullOrEmpty(request.Image))
            throw new HullException(ErrorKind.InvalidArgument, $"container \"{config.Name}\" names no image");
        var podEntry = _pods.Find(request.SandboxId);
        var pod = podEntry.Record;
        EnsureAcceptsContainers(podEntry, config.Name);
        var handler = _handlers.Find(pod.Spec.RuntimeHandler) ?? _handlers.Default;
        if (handler.Snapshotter != _images.Snapshotter.Name)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"runtime handler \"{handler.Name}\" uses snapshotter \"{handler.Snapshotter}\", but this hulld runs \"{_images.Snapshotter.Name}\"");
        var image = await _images.FindAsync(request.Image, cancellationToken).ConfigureAwait(false)
                    ?? throw new HullException(ErrorKind.NotFound, $"image \"{request.Image}\" not found; pull it before creating container \"{config.Name}\"");
        UserNamespaceOptions.EnsureContainerMatchesPod(pod.Spec.UserNamespace, config.Security.UserNamespace, config.Name, pod.Id);
        string id = Ids.New();
        // Image volumes and CDI devices are checked before anything is made: a bad one leaves nothing behind.
        var volumes = await FindImageVolumesAsync(id, config, cancellationToken).ConfigureAwait(false);
        var cdiDevices = CdiRequest.Devices(config.CdiDevices, config.Annotations);
        var cdi = ResolveCdi(config.Name, cdiDevices);
        var tasks = TasksOf(pod);

        string bundle = _files.BundleDirectory(id);
        var record = NewRecord(id, pod, request, image, volumes, bundle); // checks the log path before the name is taken
        string nameKey = NameKey(config.Name, config.Attempt, pod.Spec.Identity);
        _names.Reserve(nameKey, id);
        var entry = _index.AddLocked(record);
        var undo = new CreateUndo(record, tasks);
        NriCreateResult? nriResult = null;
        try
        {
            Interlocked.MemoryBarrier(); // pairs with PodManager's: the pod sees this entry, or this sees the pod closing
            EnsureAcceptsContainers(podEntry, config.Name);
            // Persisted first: the row keeps the snapshots from the garbage collector and lets the next start undo a crash.
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            undo.Persisted = true;
            IReadOnlyList<Hull.Linux.Mount> mounts;
            using (Activity.StartActivity("snapshot prepare"))
                mounts = await _images.Snapshotter.PrepareAsync(id, image.ChainId, SnapshotLabelsOf(id, pod), cancellationToken).ConfigureAwait(false);
            using (Activity.StartActivity("rootfs mount"))
                _files.MountRootfs(bundle, mounts, PodUserNamespaceOf(pod));
            if (volumes.Count > 0)
            {
                using var _ = Activity.StartActivity("image volumes mount");
                config = await MountImageVolumesAsync(id, bundle, config, volumes, cancellationToken).ConfigureAwait(false);
                record = record with { Mounts = record.Mounts.Select((m, i) => m with { HostPath = config.Mounts[i].HostPath }).ToList() };
            }
            var spec = await _specs.BuildAsync(new ContainerSpecRequest
            {
                ContainerId = id,
                RootfsPath = Path.Combine(bundle, "rootfs"),
                ImageName = record.Image,
                Container = config,
                Image = image.Config,
                Sandbox = SandboxContextOf(pod),
                Handler = handler,
                ContainerDirectory = bundle,
            }, cancellationToken).ConfigureAwait(false);
            if (!cdi.IsEmpty) spec = CdiEdits.Apply(spec, cdi);
            // NRI plugins adjust the container last, through the builder's rules; what they ask of others waits for the commit.
            undo.NriNotified = true;
            nriResult = await _nri.CreateContainerAsync(pod, record, spec, cdiDevices, cancellationToken).ConfigureAwait(false);
            if (nriResult is not null)
                spec = _specs.Adjust(spec, nriResult.Adjustment, config.Name, (s, devices) => CdiEdits.Apply(s, ResolveCdi(config.Name, devices)));
            spec = _files.PrepareMounts(bundle, spec, PodUserNamespaceOf(pod));
            await _files.WriteSpecAsync(bundle, spec, cancellationToken).ConfigureAwait(false);
            if (spec.Process?.User is { } user)
                record = record with
                {
                    // The process's groups as the kernel has them (and containerd reports them): the primary gid, then the others.
                    User = new ContainerUserInfo(user.Uid, user.Gid,
                        new[] { (long)user.Gid }.Concat(user.AdditionalGids?.Select(g => (long)g) ?? []).Distinct().ToList()),
                };

            // The task (conmon + runc, most of a container's start) waits for StartContainer, as containerd's does: the
            // kubelet times the two calls apart. Everything a bad spec fails on has been checked by now.
            EnsureAcceptsContainers(podEntry, config.Name);
            record = record with { State = ContainerState.Created, TaskDeferred = true };
            await _store.PutAsync(record, CancellationToken.None).ConfigureAwait(false);
            entry.Record = record;
            _nameOf[id] = nameKey;
            _logger.LogInformation("container {Id} ({Name}) created in pod {Pod}", id, config.Name, pod.Id);
            _events.Container(record, LifecycleEventKind.Created);
            await NotifyNriAsync("PostCreateContainer", record, _nri.PostCreateContainerAsync).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogWarning("CreateContainer {Name} in pod {Pod}: {Error}; undoing", config.Name, pod.Id, e.Message);
            await UndoCreateAsync(undo).ConfigureAwait(false);
            if (undo.NriNotified) await NotifyNriAsync("RemoveContainer", record, _nri.RemoveContainerAsync).ConfigureAwait(false);
            entry.Removed = true;
            _index.Remove(id);
            _names.Release(nameKey, id);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                throw new HullException(ErrorKind.DeadlineExceeded,
                    $"CreateContainer for \"{config.Name}\" was cancelled or timed out; what it did was undone", e);
            throw;
        }
        finally
        {
            entry.Lock.Release();
        }
        // Outside this container's lock: updating another container takes that container's lock.
        if (nriResult is not null) await ApplyNriAsync(nriResult.Updates, nriResult.Evictions).ConfigureAwait(false);
        return id;
    }

    private static Dictionary<string, string> ContainerLabel(string containerId) => new() { ["io.hull.container"] = containerId };

    /// <summary>An image volume of a create: which of the container's mounts, the image it mounts, the key of its view snapshot.</summary>
    private sealed record ImageVolume(int MountIndex, ContainerImage Image, string SnapshotKey);

    /// <summary>The container's image volumes, checked (read-only, no host path, a sane sub path) and their images found.</summary>
    private async Task<IReadOnlyList<ImageVolume>> FindImageVolumesAsync(string id, ContainerConfig config, CancellationToken cancellationToken)
    {
        var volumes = new List<ImageVolume>();
        for (int i = 0; i < config.Mounts.Count; i++)
        {
            var mount = config.Mounts[i];
            if (mount.Image is null) continue;
            ContainerMounts.ValidateImageVolume(mount, config.Name);
            var image = await _images.FindAsync(mount.Image, cancellationToken).ConfigureAwait(false)
                ?? throw new HullException(ErrorKind.NotFound,
                    $"image \"{mount.Image}\" of the image volume at \"{mount.ContainerPath}\" not found; pull it before creating container \"{config.Name}\"");
            volumes.Add(new ImageVolume(i, image, $"{id}-image-volume-{volumes.Count}"));
        }
        return volumes;
    }

    /// <summary>
    /// Mounts each image volume (a read-only view snapshot of its image, in the bundle) and returns the config with the
    /// volumes' host paths filled in. The views are undone with the container's other snapshots.
    /// </summary>
    private async Task<ContainerConfig> MountImageVolumesAsync(string id, string bundle, ContainerConfig config, IReadOnlyList<ImageVolume> volumes,
        CancellationToken cancellationToken)
    {
        var mounts = config.Mounts.ToArray();
        for (int n = 0; n < volumes.Count; n++)
        {
            var volume = volumes[n];
            var view = await _images.Snapshotter.ViewAsync(volume.SnapshotKey, volume.Image.ChainId, ContainerLabel(id), cancellationToken)
                .ConfigureAwait(false);
            string root = _files.MountImageVolume(bundle, n.ToString(System.Globalization.CultureInfo.InvariantCulture), view);
            var mount = mounts[volume.MountIndex];
            mounts[volume.MountIndex] = mount with { HostPath = ContainerMounts.ImageVolumeSource(root, mount, config.Name) };
        }
        return config with { Mounts = mounts };
    }

    /// <summary>The CDI edits of the named devices; an unknown device is an error naming it and the directories searched.</summary>
    private CdiInjection ResolveCdi(string containerName, IReadOnlyList<string> devices)
    {
        if (devices.Count == 0) return CdiInjection.None;
        if (_cdi is null)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"container \"{containerName}\" asks for CDI devices {string.Join(", ", devices)}, but CDI is disabled (enable_cdi = false)");
        try
        {
            return _cdi.Resolve(devices);
        }
        catch (CdiException e)
        {
            var error = CdiEdits.ToHullException(e);
            throw new HullException(error.Kind, $"container \"{containerName}\": {error.Message}", e);
        }
    }

    /// <summary>An NRI notification: plugins learn of the change; their failure is logged and does not undo it (as in containerd).</summary>
    private async Task NotifyNriAsync(string what, ContainerRecord record, Func<SandboxRecord, ContainerRecord, CancellationToken, Task> hook)
    {
        if (_pods.Get(record.SandboxId) is not { } pod) return;
        try
        {
            await hook(pod, record, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HullException or OperationCanceledException)
        {
            _logger.LogWarning("container {Id}: NRI {Event}: {Error}", record.Id, what, e.Message);
        }
    }

    /// <summary>What NRI plugins asked of other containers: new resources, or eviction. Returns the updates that failed.</summary>
    internal async Task<IReadOnlyList<NriContainerUpdate>> ApplyNriAsync(IReadOnlyList<NriContainerUpdate> updates, IReadOnlyList<NriContainerEviction> evictions)
    {
        var failed = new List<NriContainerUpdate>();
        foreach (var update in updates)
        {
            try
            {
                await UpdateResourcesAsync(update.ContainerId, TaskResources.FromOci(update.Resources), CancellationToken.None, fromNri: true)
                    .ConfigureAwait(false);
            }
            catch (HullException e)
            {
                _logger.LogWarning("container {Id}: NRI update failed: {Error}", update.ContainerId, e.Message);
                if (!update.IgnoreFailure) failed.Add(update);
            }
        }
        foreach (var eviction in evictions)
        {
            _logger.LogInformation("container {Id}: evicted by an NRI plugin: {Reason}", eviction.ContainerId, eviction.Reason);
            try
            {
                await StopAsync(eviction.ContainerId, TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                _logger.LogWarning("container {Id}: NRI eviction failed: {Error}", eviction.ContainerId, e.Message);
            }
        }
        return failed;
    }

    /// <summary>A pod takes new containers only while it is ready and no stop or remove has begun.</summary>
    private static void EnsureAcceptsContainers(ObjectIndex<SandboxRecord>.Entry pod, string containerName)
    {
        if (pod.Removed || pod.Closing)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{pod.Id}\" is being stopped or removed; container \"{containerName}\" was not created");
        if (pod.Record.State != SandboxState.Ready)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{pod.Id}\" is not ready (it was stopped or is being created); cannot create container \"{containerName}\" in it");
    }

    private ContainerRecord NewRecord(string id, SandboxRecord pod, ContainerCreateRequest request, ContainerImage image,
        IReadOnlyList<ImageVolume> volumes, string bundle)
    {
        var config = request.Config;
        return new ContainerRecord
        {
            Id = id,
            SandboxId = pod.Id,
            Name = config.Name,
            Attempt = config.Attempt,
            Image = image.Name ?? request.Image,
            ImageId = image.Id,
            ImageRef = image.Ref,
            Labels = new Dictionary<string, string>(config.Labels, StringComparer.Ordinal),
            Annotations = new Dictionary<string, string>(config.Annotations, StringComparer.Ordinal),
            Mounts = config.Mounts.Select((m, i) => new ContainerMountInfo(m.ContainerPath, m.HostPath, m.Readonly, m.Propagation.ToString(),
                volumes.FirstOrDefault(v => v.MountIndex == i) is { } v ? new ImageVolumeInfo(m.Image!, v.Image.Id, m.ImageSubPath ?? "", v.SnapshotKey) : null))
                .ToList(),
            LogPath = LogPathFor(pod, config, bundle),
            RequestedLogPath = config.LogPath ?? "",
            BundlePath = bundle,
            Snapshotter = _images.Snapshotter.Name,
            StopSignal = Signals.TryParse(config.StopSignal) ?? Signals.TryParse(image.Config.StopSignal) ?? Signals.SIGTERM,
            Tty = config.Tty,
            Stdin = config.Stdin,
            StdinOnce = config.StdinOnce,
            State = ContainerState.Creating,
            CreatedAt = DateTimeOffset.UtcNow,
            Resources = ToTaskResources(config.Resources),
        };
    }

    /// <summary>What a create has done so far, so its undo does exactly that in reverse.</summary>
    private sealed class CreateUndo(ContainerRecord record, ITaskService? tasks)
    {
        public ContainerRecord Record { get; } = record;
        public ITaskService? Tasks { get; } = tasks;
        public bool Persisted { get; set; }
        public bool TaskCreated { get; set; }
        /// <summary>NRI plugins were told of the create, so they are told of its undo.</summary>
        public bool NriNotified { get; set; }
    }

    /// <summary>Undoes a create in reverse; failures are logged, and the row stays (as 'creating') for the next start to retry.</summary>
    private async Task UndoCreateAsync(CreateUndo undo)
    {
        if (!undo.Persisted) return; // nothing was made yet
        var record = undo.Record;
        try
        {
            if (undo.TaskCreated && undo.Tasks is not null) await undo.Tasks.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            _files.RemoveBundle(record.BundlePath);
            await RemoveSnapshotsAsync(record).ConfigureAwait(false);
            await _store.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogError("container {Id}: undoing a failed create failed: {Error}", record.Id, e.Message);
        }
    }

    /// <summary>Removes those of the container's snapshots that exist: its writable one (key = its id) and its image volumes' views.</summary>
    private async Task RemoveSnapshotsAsync(ContainerRecord record)
    {
        IEnumerable<string> keys = [record.Id, .. record.Mounts.Where(m => m.Image is not null).Select(m => m.Image!.SnapshotKey)];
        foreach (var key in keys)
            if (await _images.Snapshotter.TryStatAsync(key, CancellationToken.None).ConfigureAwait(false) is not null)
                await _images.Snapshotter.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false);
    }

    private static string LogPathFor(SandboxRecord pod, ContainerConfig config, string bundle)
    {
        if (pod.Spec.LogDirectory is { Length: > 0 } dir && config.LogPath is { Length: > 0 } relative)
        {
            // conmon writes the log as root: a path out of the pod's log directory would write wherever the client likes.
            if (Path.IsPathRooted(relative) || relative.Split('/').Contains(".."))
                throw new HullException(ErrorKind.InvalidArgument,
                    $"log path \"{relative}\" of container \"{config.Name}\" must stay inside the pod's log directory \"{dir}\" (not absolute, no \"..\")");
            string full = Path.GetFullPath(Path.Combine(dir, relative));
            if (full.Contains(':'))
                throw new HullException(ErrorKind.InvalidArgument, $"log path \"{full}\" of container \"{config.Name}\" contains ':', which conmon cannot take");
            return full;
        }
        return Path.Combine(bundle, "container.log");
    }

    /// <summary>The container's snapshot labels; in a pod with its own user namespace, containerd's id-mapping labels too.</summary>
    private static Dictionary<string, string> SnapshotLabelsOf(string id, SandboxRecord pod)
    {
        var userns = pod.Spec.UserNamespace;
        var labels = userns.IsPod
            ? SnapshotLabels.IdMapped(UserNamespaceOptions.Format(userns.Uids[0]), UserNamespaceOptions.Format(userns.Gids[0]))
            : new Dictionary<string, string>(StringComparer.Ordinal);
        labels["io.hull.container"] = id;
        return labels;
    }

    /// <summary>
    /// The pod's own user namespace, pinned, for the container's idmapped mounts: they take it from the pin rather than
    /// cloning a process to make a namespace with the same mapping. Null for a host-users pod.
    /// </summary>
    private static PinnedUserNamespace? PodUserNamespaceOf(SandboxRecord pod) => pod.Spec.UserNamespace.PinnedAt(pod.Instance.UserNsPath);

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
            PodAnnotations = s.Annotations,
            Hostname = s.Hostname,
            // Host or not is the pod's mode (UTS follows the network, as in containerd); a pod namespace without a pin on
            // the host (a microVM's IPC and UTS are the guest's) is one of the pod's own, not the host's.
            Network = NamespaceOf(s.NetworkMode, i.NetNsPath),
            Ipc = NamespaceOf(s.IpcMode, i.IpcNsPath),
            Uts = NamespaceOf(s.NetworkMode, i.UtsNsPath),
            SharedPidNamespacePath = i.PidNsPath.Length > 0 ? i.PidNsPath : null,
            CgroupParent = i.CgroupParent.Length > 0 ? i.CgroupParent : null,
            Privileged = s.Privileged,
            HostsPath = i.HostsPath.Length > 0 ? i.HostsPath : null,
            ResolvConfPath = i.ResolvConfPath.Length > 0 ? i.ResolvConfPath : null,
            HostnamePath = i.HostnamePath.Length > 0 ? i.HostnamePath : null,
            ShmPath = i.ShmPath.Length > 0 ? i.ShmPath : null,
            Sysctls = s.Sysctls,
            UserNamespace = i.UserNsPath.Length > 0
                ? new UserNamespace { Path = i.UserNsPath, UidMappings = s.UserNamespace.Uids, GidMappings = s.UserNamespace.Gids }
                : null,
        };
    }

    private static NamespaceRef NamespaceOf(NamespaceMode mode, string pinned) =>
        mode == NamespaceMode.Node ? NamespaceRef.Host : pinned.Length > 0 ? NamespaceRef.At(pinned) : NamespaceRef.New;

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

    /// <summary>Starts a created container. Its pod must be ready (FailedPrecondition otherwise, as in containerd).</summary>
    public async Task StartAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        using var activity = Activity.StartActivity("StartContainer");
        var entry = FindExisting(idOrPrefix);
        await entry.LockedAsync(async () =>
        {
            var record = entry.Record;
            if (entry.Removed) throw NotFound(record.Id);
            if (record.State != ContainerState.Created)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}, not created; it cannot be started");
            var pod = _pods.TryFind(record.SandboxId);
            if (pod is null || pod.Closing || pod.Record.State != SandboxState.Ready)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"pod sandbox \"{record.SandboxId}\" of container \"{record.Id}\" is not ready; the container cannot be started");
            var tasks = TasksOf(pod.Record);
            await NotifyNriAsync("StartContainer", record, _nri.StartContainerAsync).ConfigureAwait(false);
            DateTimeOffset startedAt;
            try
            {
                // Taken before the runtime starts the process, so one that exits at once never finishes before it started.
                startedAt = DateTimeOffset.UtcNow;
                if (record.TaskDeferred) record = await RunTaskAsync(record, tasks, cancellationToken).ConfigureAwait(false);
                else await tasks.StartAsync(record.Id, cancellationToken).ConfigureAwait(false);
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
                PodsTelemetry.ContainerExited(failed.Reason);
                _events.Container(failed, LifecycleEventKind.Stopped);
                throw;
            }
            var started = record with { State = ContainerState.Running, StartedAt = startedAt };
            await _store.PutAsync(started, CancellationToken.None).ConfigureAwait(false);
            entry.Record = started;
            _logger.LogInformation("container {Id} started", record.Id);
            if (record.Attempt == 0) PodsTelemetry.PodStarted(startedAt - pod.Record.CreatedAt, PodsTelemetry.HandlerLabel(_handlers, pod.Record.Spec.RuntimeHandler));
            _events.Container(started, LifecycleEventKind.Started);
            Watch(entry, tasks);
            await NotifyNriAsync("PostStartContainer", started, _nri.PostStartContainerAsync).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Makes the task of a container whose create deferred it (conmon + runc create on the bundle written then), and
    /// records it. Call with the entry's lock held. A failure leaves the record as it was (runc create undoes itself).
    /// </summary>
    private async Task<ContainerRecord> CreateTaskAsync(ObjectIndex<ContainerRecord>.Entry entry, ITaskService tasks, CancellationToken cancellationToken)
    {
        TaskInfo info;
        using (Activity.StartActivity("task create"))
            info = await tasks.CreateAsync(TaskRequest(entry.Record), cancellationToken).ConfigureAwait(false);
        var record = TaskMade(entry.Record, info);
        await _store.PutAsync(record, CancellationToken.None).ConfigureAwait(false);
        entry.Record = record;
        return record;
    }

    /// <summary>
    /// Makes and starts, in one step, the task of a container whose create deferred it. The record it returns is not
    /// stored: the caller stores it as running. A hulld killed before that finds the task at its next start
    /// (<see cref="RecoverDeferredAsync"/>) and takes its state from it. A failure leaves the record as it was.
    /// </summary>
    private async Task<ContainerRecord> RunTaskAsync(ContainerRecord record, ITaskService tasks, CancellationToken cancellationToken)
    {
        TaskInfo info;
        using (Activity.StartActivity("task run"))
            info = await tasks.RunAsync(TaskRequest(record), cancellationToken).ConfigureAwait(false);
        return TaskMade(record, info);
    }

    private static TaskCreateRequest TaskRequest(ContainerRecord record) => new(record.Id, record.BundlePath, record.LogPath)
    {
        Name = record.Name,
        Terminal = record.Tty,
        Stdin = record.Stdin,
        StdinOnce = record.StdinOnce,
    };

    private ContainerRecord TaskMade(ContainerRecord record, TaskInfo info)
    {
        // runc has made the container's mount namespace: the idmapped binds prepared for it are no longer needed.
        _files.ReleasePreparedMounts(record.BundlePath);
        return record with { Pid = info.Pid, TaskDeferred = false };
    }

    /// <summary>
    /// Records the container's exit as soon as its task reports it (unless a stop recorded it already), then has the task
    /// deleted in the background, as containerd does at an exit: the runtime's state, cgroup and monitor go then, and
    /// RemoveContainer, which a kubelet sends much later, is left with Hull's own files.
    /// </summary>
    private void Watch(ObjectIndex<ContainerRecord>.Entry entry, ITaskService tasks)
    {
        string id = entry.Id;
        _ = Task.Run(async () =>
        {
            try
            {
                var exit = await tasks.WaitAsync(id, _shutdown.Token).ConfigureAwait(false);
                await entry.LockedAsync(async () =>
                {
                    if (entry.Removed) return;
                    if (entry.Record.State == ContainerState.Running) await RecordExitAsync(entry, exit).ConfigureAwait(false);
                    _exitedTasks.Enqueue(() => DeleteExitedTaskAsync(entry, tasks));
                }, _shutdown.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                _logger.LogDebug("container {Id}: watching for its exit ended: {Error}", id, e.Message);
            }
        });
    }

    /// <summary>For <see cref="ExitedTaskDeleter"/>: a delete that fails is logged, and RemoveContainer tries again.</summary>
    private async Task DeleteExitedTaskAsync(ObjectIndex<ContainerRecord>.Entry entry, ITaskService tasks)
    {
        try
        {
            await entry.LockedAsync(async () =>
            {
                if (entry.Removed) return;
                using var activity = Activity.StartActivity("delete exited task");
                await tasks.DeleteAsync(entry.Id, CancellationToken.None).ConfigureAwait(false);
            }, _shutdown.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { } // hulld is stopping; RemoveContainer deletes it
        catch (Exception e) // whatever it is, the worker goes on with the next
        {
            _logger.LogWarning("container {Id}: deleting its task after its exit failed (RemoveContainer tries again): {Error}", entry.Id, e.Message);
        }
    }

    /// <summary>Call with the entry's lock held.</summary>
    private async Task RecordExitAsync(ObjectIndex<ContainerRecord>.Entry entry, TaskExit exit)
    {
        var exited = Exited(entry.Record, exit);
        await _store.PutAsync(exited, CancellationToken.None).ConfigureAwait(false);
        entry.Record = exited;
        PodsTelemetry.ContainerExited(exit.Reason);
        _logger.LogInformation("container {Id} exited with code {Code}", exited.Id, exited.ExitCode);
        _events.Container(exited, LifecycleEventKind.Stopped);
    }

    private static ContainerRecord Exited(ContainerRecord record, TaskExit exit) => record with
    {
        State = ContainerState.Exited,
        // conmon's exit file time has coarser resolution than the start time; never report an end before the start.
        FinishedAt = record.StartedAt is { } started && exit.FinishedAt < started ? started : exit.FinishedAt,
        ExitCode = exit.ExitCode,
        Reason = exit.Reason,
        Message = exit.Message ?? "",
    };

    /// <summary>
    /// Stops the container with its stop signal, then SIGKILL after <paramref name="timeout"/>. Idempotent: a container that
    /// has exited, or is not known at all, is no error (the kubelet retries stops of containers it already removed; containerd 2.x).
    /// </summary>
    public async Task StopAsync(string idOrPrefix, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (TryFindExisting(idOrPrefix) is not { } entry) return;
        var updates = await entry.LockedAsync(() => StopLockedAsync(entry, timeout, cancellationToken), cancellationToken).ConfigureAwait(false);
        if (updates.Count > 0) await ApplyNriAsync(updates, []).ConfigureAwait(false);
    }

    /// <summary>Returns what NRI plugins want of the other containers now that this one stopped (applied by the caller, outside the lock).</summary>
    private async Task<IReadOnlyList<NriContainerUpdate>> StopLockedAsync(ObjectIndex<ContainerRecord>.Entry entry, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var record = entry.Record;
        if (entry.Removed || record.State is ContainerState.Exited) return [];
        if (TryTasksOf(record) is not { } tasks) return []; // its pod is gone, and with it the task
        if (record.State == ContainerState.Created) timeout = TimeSpan.Zero; // never started: nothing to stop gracefully
        TaskExit exit;
        if (record.TaskDeferred)
            // No process was ever made; reported as one killed before it ran (what stopping a created runc container gives).
            exit = new TaskExit(137, DateTimeOffset.UtcNow, false) { Message = "stopped before it was started" };
        else
            try
            {
                exit = await tasks.StopAsync(record.Id, timeout, record.StopSignal, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound)
            {
                exit = new TaskExit(255, DateTimeOffset.UtcNow, false) { Message = "the container's task was not found" };
            }
        await RecordExitAsync(entry, exit).ConfigureAwait(false);
        if (_pods.Get(record.SandboxId) is not { } pod) return [];
        try
        {
            return await _nri.StopContainerAsync(pod, entry.Record, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HullException or OperationCanceledException)
        {
            _logger.LogWarning("container {Id}: NRI StopContainer: {Error}", record.Id, e.Message);
            return [];
        }
    }

    /// <summary>Removes the container: kills it if it runs, deletes the task, bundle, snapshot and record. Idempotent.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = _index.TryFind(idOrPrefix);
        if (entry is null) return;
        await entry.LockedAsync(() => RemoveLockedAsync(entry, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async Task RemoveLockedAsync(ObjectIndex<ContainerRecord>.Entry entry, CancellationToken cancellationToken)
    {
        if (entry.Removed) return;
        await StopLockedAsync(entry, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        var record = entry.Record;
        if (!record.TaskDeferred && TryTasksOf(record) is { } tasks) await tasks.DeleteAsync(record.Id, cancellationToken).ConfigureAwait(false);
        _files.RemoveBundle(record.BundlePath);
        await RemoveSnapshotsAsync(record).ConfigureAwait(false);
        await _store.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
        entry.Removed = true;
        _index.Remove(record.Id);
        if (_nameOf.TryRemove(record.Id, out var nameKey)) _names.Release(nameKey, record.Id);
        _logger.LogInformation("container {Id} removed", record.Id);
        _events.Container(record, LifecycleEventKind.Deleted);
        await NotifyNriAsync("RemoveContainer", record, _nri.RemoveContainerAsync).ConfigureAwait(false);
    }

    /// <summary>For <see cref="PodManager"/>: kills every container of the pod (waiting for any create in flight).</summary>
    internal async Task StopPodContainersAsync(string sandboxId, CancellationToken cancellationToken)
    {
        foreach (var entry in _index.Entries(r => r.SandboxId == sandboxId))
            await entry.LockedAsync(() => StopLockedAsync(entry, TimeSpan.Zero, cancellationToken), cancellationToken).ConfigureAwait(false); // the pod goes: no updates
    }

    /// <summary>For <see cref="PodManager"/>: removes every container of the pod.</summary>
    internal async Task RemovePodContainersAsync(string sandboxId, CancellationToken cancellationToken)
    {
        foreach (var entry in _index.Entries(r => r.SandboxId == sandboxId))
            await entry.LockedAsync(() => RemoveLockedAsync(entry, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- status / list / exec / resources

    /// <summary>
    /// The container as the index has it, except that a running container whose task has its exit already is reported
    /// exited: its watcher stores the exit a few ms later, and a caller that polls right after StartContainer (critest,
    /// a kubelet's sync) sees it now. Never waits on the container.
    /// </summary>
    public ContainerRecord Status(string idOrPrefix)
    {
        var record = FindExisting(idOrPrefix).Record;
        if (record.State != ContainerState.Running || TryTasksOf(record) is not { } tasks) return record;
        try
        {
            return tasks.TryGetExit(record.Id) is { } exit ? Exited(record, exit) : record;
        }
        catch (HullException)
        {
            return record; // the task is gone (deleted at its exit): the record has what is known
        }
    }

    /// <summary>A snapshot of the index, filtered; never waits on a container. Containers still being created are not listed.</summary>
    public IReadOnlyList<ContainerRecord> List(ContainerFilter? filter = null) => _index.List(r =>
        r.State != ContainerState.Creating && (filter is null ||
        ((filter.IdPrefix is not { Length: > 0 } prefix || r.Id.StartsWith(prefix, StringComparison.Ordinal)) &&
         (filter.State is not { } state || r.State == state) &&
         (filter.SandboxIdPrefix is not { Length: > 0 } pod || r.SandboxId.StartsWith(pod, StringComparison.Ordinal)) &&
         (filter.Labels is not { } labels || labels.All(l => r.Labels.TryGetValue(l.Key, out var v) && v == l.Value)))));

    /// <summary>The containers of one pod as they are now (for PodSandboxStatus and events); never waits.</summary>
    public IReadOnlyList<ContainerRecord> OfPod(string sandboxId) => _events.SnapshotOf(sandboxId).Containers;

    /// <summary>Runs a command in a running container. A timeout is DeadlineExceeded (the command's processes are killed).</summary>
    public async Task<ExecSyncResult> ExecSyncAsync(string idOrPrefix, IReadOnlyList<string> command, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var record = RunningRecord(idOrPrefix, "cannot exec in it");
        var result = await TasksFor(record).ExecSyncAsync(record.Id, command, timeout, cancellationToken).ConfigureAwait(false);
        if (result.TimedOut)
            throw new HullException(ErrorKind.DeadlineExceeded,
                $"command {string.Join(' ', command)} in container \"{record.Id}\" timed out after {timeout.TotalSeconds:0.###} s and was killed");
        return result;
    }

    /// <summary>A running container's record and its pod's task endpoint (for streaming: exec, attach, port-forward).</summary>
    public (ContainerRecord Record, ITaskService Tasks) Running(string idOrPrefix, string whatFor)
    {
        var record = RunningRecord(idOrPrefix, whatFor);
        return (record, TasksFor(record));
    }

    private ContainerRecord RunningRecord(string idOrPrefix, string whatFor)
    {
        var record = FindExisting(idOrPrefix).Record;
        if (record.State != ContainerState.Running)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}, not running; {whatFor}");
        return record;
    }

    /// <summary>
    /// Updates a created or running container's resources (UpdateContainerResources). NRI plugins may change what is
    /// asked first and update other containers (after this one's lock is released); <paramref name="fromNri"/> marks an
    /// update a plugin asked for, which plugins are not asked about again.
    /// </summary>
    public async Task UpdateResourcesAsync(string idOrPrefix, TaskResources resources, CancellationToken cancellationToken, bool fromNri = false)
    {
        var entry = FindExisting(idOrPrefix);
        var others = await entry.LockedAsync(async () =>
        {
            var record = entry.Record;
            if (record.State is not (ContainerState.Created or ContainerState.Running))
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"container \"{record.Id}\" is {ContainerStore.StateName(record.State)}; its resources cannot be updated");
            NriUpdateResult? nri = null;
            if (!fromNri && _pods.Get(record.SandboxId) is { } pod)
            {
                nri = await _nri.UpdateContainerAsync(pod, record, resources.ToOci(), cancellationToken).ConfigureAwait(false);
                if (nri?.Resources is { } adjusted) resources = TaskResources.FromOci(adjusted);
            }
            // As at create (and as containerd's update re-applies WithResources): no swap unless asked for, so a new memory
            // limit moves memory+swap with it; otherwise cgroup v1 refuses a memory limit above the old memory+swap one.
            if (resources.MemoryLimitBytes is { } limit && resources.MemorySwapLimitBytes is null && _specs.Host.SwapControllerAvailable)
                resources = resources with { MemorySwapLimitBytes = limit };
            // A deferred task is made now (containerd rewrites its spec instead): runc then applies the update as to any other.
            if (record.TaskDeferred) record = await CreateTaskAsync(entry, TasksFor(record), cancellationToken).ConfigureAwait(false);
            await TasksFor(record).UpdateResourcesAsync(record.Id, resources, cancellationToken).ConfigureAwait(false);
            var updated = record with { Resources = Merge(record.Resources, resources) };
            await _store.PutAsync(updated, CancellationToken.None).ConfigureAwait(false);
            entry.Record = updated;
            if (!fromNri) await NotifyNriAsync("PostUpdateContainer", updated, _nri.PostUpdateContainerAsync).ConfigureAwait(false);
            return nri;
        }, cancellationToken).ConfigureAwait(false);
        if (others is { } result && (result.Updates.Count > 0 || result.Evictions.Count > 0))
            await ApplyNriAsync(result.Updates, result.Evictions).ConfigureAwait(false);
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
        var record = FindExisting(idOrPrefix).Record;
        // A container whose task is not made yet has no cgroup and has used nothing; an exited one's task and cgroup are
        // deleted at its exit (containerd too reports no CPU or memory for it, only its writable layer).
        var stats = record.TaskDeferred || record.State == ContainerState.Exited ? CgroupStats.None() : TasksFor(record).GetStats(record.Id);
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
        var record = RunningRecord(idOrPrefix, "its log cannot be reopened");
        await TasksFor(record).ReopenLogAsync(record.Id, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A container's OCI spec as written in its bundle (verbose ContainerStatus); null when there is none.</summary>
    public Task<string?> SpecJsonAsync(ContainerRecord record, CancellationToken cancellationToken) =>
        _files.ReadSpecAsync(record.BundlePath, cancellationToken);

    /// <summary>A container that exists (one still being created is not found: its id was not handed out yet).</summary>
    private ObjectIndex<ContainerRecord>.Entry FindExisting(string idOrPrefix) => TryFindExisting(idOrPrefix) ?? throw NotFound(idOrPrefix);

    private ObjectIndex<ContainerRecord>.Entry? TryFindExisting(string idOrPrefix) =>
        _index.TryFind(idOrPrefix) is { } entry && (entry.Record.State != ContainerState.Creating || entry.Record.Recovered) ? entry : null;

    private static HullException NotFound(string id) => new(ErrorKind.NotFound, $"container \"{id}\" not found");

    private ITaskService TasksOf(SandboxRecord pod) => _sandboxers.Get(pod.Instance.Sandboxer).Tasks(pod.Id);

    private ITaskService TasksFor(ContainerRecord record) =>
        TryTasksOf(record) ?? throw new HullException(ErrorKind.NotFound, $"pod sandbox \"{record.SandboxId}\" of container \"{record.Id}\" not found");

    /// <summary>The task endpoint of the container's pod; null when the pod or its sandboxer is gone.</summary>
    private ITaskService? TryTasksOf(ContainerRecord record) =>
        _pods.Get(record.SandboxId) is { } pod && _sandboxers.Find(pod.Instance.Sandboxer) is { } sandboxer ? sandboxer.Tasks(pod.Id) : null;

    // ---------------------------------------------------------------- restart

    /// <summary>
    /// At start (after the pods are loaded): loads every container, asks its pod's task endpoint what became of it
    /// (running, or exited with its exit code and time), and undoes creates a crash interrupted.
    /// </summary>
    internal async Task RecoverAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await _store.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            var tasks = TryTasksOf(record);
            if (record.State == ContainerState.Creating)
            {
                _logger.LogWarning("container {Id}: hulld stopped while it was being created; undoing it", record.Id);
                await UndoCreateAsync(new CreateUndo(record, tasks) { Persisted = true, TaskCreated = true })
                    .ConfigureAwait(false);
                continue;
            }
            var recovered = await RecoverStateAsync(record, tasks, cancellationToken).ConfigureAwait(false) with { Recovered = true };
            var entry = _index.Add(recovered);
            string nameKey = _pods.Get(record.SandboxId) is { } pod
                ? NameKey(record.Name, record.Attempt, pod.Spec.Identity)
                : $"{record.Name}_{record.SandboxId}_{record.Attempt}";
            _names.Reserve(nameKey, record.Id);
            _nameOf[record.Id] = nameKey;
            if (recovered.State == ContainerState.Running && tasks is not null) Watch(entry, tasks);
            // An exited container's task may still be there: it exited while hulld was down, or hulld stopped before the
            // delete queued at its exit ran. A delete of a task that is gone costs nothing.
            else if (recovered.State == ContainerState.Exited && !recovered.TaskDeferred && tasks is not null)
                _exitedTasks.Enqueue(() => DeleteExitedTaskAsync(entry, tasks));
            // What changed while hulld was down reaches the kubelet when it subscribes again (the events are held).
            if (recovered.State != record.State)
                _events.Container(recovered, recovered.State == ContainerState.Running ? LifecycleEventKind.Started : LifecycleEventKind.Stopped);
        }
        _logger.LogInformation("recovered {Count} containers ({Running} running)", _index.Count,
            _index.List(r => r.State == ContainerState.Running).Count);
    }

    /// <summary>What the task endpoint says became of a container that was created or running when hulld stopped.</summary>
    private async Task<ContainerRecord> RecoverStateAsync(ContainerRecord record, ITaskService? tasks, CancellationToken cancellationToken)
    {
        if (record.State is not (ContainerState.Created or ContainerState.Running)) return record;
        if (record.TaskDeferred) return await RecoverDeferredAsync(record, tasks, cancellationToken).ConfigureAwait(false);
        TaskRecovery? found = null;
        try
        {
            if (tasks is not null) found = await tasks.RecoverAsync(record.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (HullException e)
        {
            _logger.LogWarning("container {Id}: cannot recover its task: {Error}", record.Id, e.Message);
        }
        var recovered = found switch
        {
            null => record with
            {
                State = ContainerState.Exited, FinishedAt = DateTimeOffset.UtcNow, ExitCode = 255, Reason = "Unknown",
                Message = "the container's task was not found after hulld restarted",
            },
            { Exit: { } exit } => record with
            {
                State = ContainerState.Exited, FinishedAt = exit.FinishedAt, ExitCode = exit.ExitCode, Reason = exit.Reason, Message = exit.Message ?? "",
            },
            // runc start succeeded but hulld died before writing "running": the task's state is the truth. The exact start
            // time was lost with hulld; recovery time is the closest later bound.
            { Status: RuntimeStatus.Running or RuntimeStatus.Paused } when record.State == ContainerState.Created =>
                record with { State = ContainerState.Running, StartedAt = DateTimeOffset.UtcNow },
            _ => record,
        };
        if (recovered != record) await _store.PutAsync(recovered, cancellationToken).ConfigureAwait(false);
        return recovered;
    }

    /// <summary>
    /// A created container whose task was deferred: still created when no task exists; when hulld died between making the
    /// task and recording it, the task is there and the record catches up (its state then comes from the task).
    /// </summary>
    private async Task<ContainerRecord> RecoverDeferredAsync(ContainerRecord record, ITaskService? tasks, CancellationToken cancellationToken)
    {
        if (tasks is null) return record;
        TaskRecovery found;
        try
        {
            found = await tasks.RecoverAsync(record.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (HullException)
        {
            return record; // no task: still waiting for StartContainer
        }
        _files.ReleasePreparedMounts(record.BundlePath);
        var made = record with { TaskDeferred = false };
        await _store.PutAsync(made, cancellationToken).ConfigureAwait(false);
        return await RecoverStateAsync(made, tasks, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops watching for exits (containers keep running).</summary>
    public void Shutdown() => _shutdown.Cancel();
}
