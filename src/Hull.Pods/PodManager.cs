using System.Diagnostics;
using Hull.Core;
using Hull.Pods.Events;
using Hull.Pods.Hooks;
using Hull.Pods.Index;
using Hull.Pods.Stores;
using Hull.Runtime.Handlers;
using Hull.Sandbox.Controller;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Pods;

/// <summary>What ListPodSandbox filters on; null fields match everything.</summary>
public sealed record SandboxFilter(string? IdPrefix = null, SandboxState? State = null, IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>
/// Pod sandboxes across sandboxers, with their containers: RunPodSandbox (validate → reserve name → persist → sandboxer
/// Create → Start → persist), stop and remove (the pod's containers first, then the sandboxer), status, list, and
/// recovery after a restart. Every pod has its own lock; list and status read the in-memory index and never wait on a
/// pod that is busy.
/// </summary>
public sealed class PodManager
{
    private static readonly ActivitySource Activity = PodsTelemetry.Source;
    private static readonly TimeSpan SandboxStopTimeout = TimeSpan.FromSeconds(10);

    private readonly SandboxStore _store;
    private readonly ObjectIndex<SandboxRecord> _index;
    private readonly Sandboxers _sandboxers;
    private readonly ContainerManager _containers;
    private readonly LifecycleEvents _events;
    private readonly NriHooks _nri;
    private readonly ILogger _logger;
    private readonly NameRegistrar _names = new("sandbox");

    public PodManager(SandboxStore store, ObjectIndex<SandboxRecord> index, Sandboxers sandboxers, RuntimeHandlers handlers,
        ContainerManager containers, LifecycleEvents events, ILogger<PodManager>? logger = null, NriHooks? nri = null)
    {
        _nri = nri ?? NriHooks.None;
        _store = store;
        _index = index;
        _sandboxers = sandboxers;
        Handlers = handlers;
        _containers = containers;
        _events = events;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public RuntimeHandlers Handlers { get; }

    /// <summary>What the handler's sandboxer reports about it on this node (e.g. a microVM handler's accelerator), for hullctl info.</summary>
    public IReadOnlyDictionary<string, string> Describe(RuntimeHandler handler) =>
        _sandboxers.Find(handler.Sandboxer)?.Describe(handler) ?? new Dictionary<string, string>();

    // ---------------------------------------------------------------- run

    /// <summary>Runs a pod sandbox; returns its id. On any failure, or cancellation, everything is undone and the name released.</summary>
    public async Task<string> RunAsync(PodSandboxSpec spec, CancellationToken cancellationToken)
    {
        using var activity = Activity.StartActivity("RunPodSandbox");
        var handler = Handlers.Resolve(spec.RuntimeHandler);
        var sandboxer = _sandboxers.For(handler);
        if (string.IsNullOrEmpty(spec.Identity.Name) || string.IsNullOrEmpty(spec.Identity.Namespace) || string.IsNullOrEmpty(spec.Identity.Uid))
            throw new HullException(ErrorKind.InvalidArgument, "pod sandbox metadata needs a name, a namespace and a uid");
        string name = spec.Identity.ReservationKey;
        _names.Reserve(name, spec.Id);
        var created = DateTimeOffset.UtcNow;
        var record = new SandboxRecord(spec,
            new SandboxInstance { Id = spec.Id, CreatedAt = created, Sandboxer = sandboxer.Name, State = SandboxState.Creating },
            SandboxState.Creating, created, null);
        ObjectIndex<SandboxRecord>.Entry? entry = null;
        bool persisted = false;
        try
        {
            // Persisted first, so a crash from here on is undone at the next start instead of leaking.
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            persisted = true;
            entry = _index.Add(record);
            var made = await sandboxer.CreateAsync(spec, cancellationToken).ConfigureAwait(false);
            // What the undo needs (namespaces, the infra task about to start) reaches the row before the start's side effects.
            record = record with { Instance = made with { State = SandboxState.Creating } };
            await _store.PutAsync(record, cancellationToken).ConfigureAwait(false);
            entry.Record = record;
            var instance = await sandboxer.StartAsync(spec.Id, cancellationToken).ConfigureAwait(false);
            var ready = record with { Instance = instance, State = SandboxState.Ready };
            // NRI plugins see the pod before it is acknowledged; a required plugin that is missing or fails fails the run.
            await _nri.RunPodSandboxAsync(ready, cancellationToken).ConfigureAwait(false);
            await _store.PutAsync(ready, cancellationToken).ConfigureAwait(false);
            entry.Record = ready;
            _logger.LogInformation("pod sandbox {Id} ({Name}) is ready", spec.Id, name);
            _events.Pod(spec.Id, LifecycleEventKind.Started);
            return spec.Id;
        }
        catch (Exception e)
        {
            _logger.LogWarning("RunPodSandbox {Name}: {Error}; undoing", name, e.Message);
            await UndoRunAsync(spec.Id, sandboxer, persisted).ConfigureAwait(false);
            if (entry is not null) _index.Remove(spec.Id);
            _names.Release(name, spec.Id);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                throw new HullException(ErrorKind.DeadlineExceeded, $"RunPodSandbox for \"{name}\" was cancelled or timed out; what it did was undone", e);
            throw;
        }
    }

    /// <summary>Undoes a RunPodSandbox in reverse. A failure is logged and the row stays as 'creating' for the next start to finish.</summary>
    private async Task UndoRunAsync(string id, ISandboxController sandboxer, bool persisted)
    {
        if (!persisted) return; // the sandboxer was never called
        try
        {
            await sandboxer.ShutdownAsync(id, CancellationToken.None).ConfigureAwait(false);
            await _store.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception undo)
        {
            _logger.LogError("pod sandbox {Id}: undoing a failed RunPodSandbox failed: {Error}", id, undo.Message);
        }
    }

    // ---------------------------------------------------------------- stop / remove

    /// <summary>
    /// Stops the pod's containers, then the pod itself (infra process, network, namespaces). Idempotent: a pod that is
    /// already stopped, or not known at all, is no error (the kubelet retries stops of pods it already removed; containerd 2.x).
    /// </summary>
    public async Task StopAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = _index.TryFind(idOrPrefix);
        if (entry is null) return;
        await entry.LockedAsync(async () =>
        {
            if (entry.Removed) return;
            var record = entry.Record;
            RefuseWhileCreating(record);
            CloseToNewContainers(entry);
            var sandboxer = _sandboxers.Get(record.Instance.Sandboxer);
            HullException? failure = null;
            try
            {
                await _containers.StopPodContainersAsync(record.Id, cancellationToken).ConfigureAwait(false);
                await NotifyNriAsync("StopPodSandbox", record, _nri.StopPodSandboxAsync).ConfigureAwait(false);
                await sandboxer.StopAsync(record.Id, SandboxStopTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                failure = e;
            }
            await PersistAsync(entry, sandboxer, CancellationToken.None).ConfigureAwait(false);
            // A pod that is still ready (its containers could not be stopped) takes containers again until the kubelet retries.
            if (entry.Record.State == SandboxState.Ready) entry.Closing = false;
            if (failure is not null) throw failure;
            _events.Pod(record.Id, LifecycleEventKind.Stopped);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the pod, its containers and everything it owned (stopping them first). Idempotent: an unknown id is no error.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = _index.TryFind(idOrPrefix);
        if (entry is null) return;
        await entry.LockedAsync(async () =>
        {
            if (entry.Removed) return;
            var record = entry.Record;
            RefuseWhileCreating(record);
            CloseToNewContainers(entry);
            await _containers.StopPodContainersAsync(record.Id, cancellationToken).ConfigureAwait(false);
            await _containers.RemovePodContainersAsync(record.Id, cancellationToken).ConfigureAwait(false);
            if (_sandboxers.Find(record.Instance.Sandboxer) is { } sandboxer)
            {
                try
                {
                    await sandboxer.ShutdownAsync(record.Id, cancellationToken).ConfigureAwait(false);
                }
                catch (HullException)
                {
                    await PersistAsync(entry, sandboxer, CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
            }
            else
            {
                _logger.LogWarning("pod sandbox {Id}: its sandboxer \"{Sandboxer}\" is not available; forgetting the pod without tearing it down",
                    record.Id, record.Instance.Sandboxer);
            }
            await ForgetAsync(entry).ConfigureAwait(false);
            await NotifyNriAsync("RemovePodSandbox", record, _nri.RemovePodSandboxAsync).ConfigureAwait(false);
            _logger.LogInformation("pod sandbox {Id} removed", record.Id);
            _events.Pod(record.Id, LifecycleEventKind.Deleted, record with { State = SandboxState.NotReady });
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An NRI notification of a change already made: a plugin's failure is logged and does not undo it (as in containerd).</summary>
    private async Task NotifyNriAsync(string what, SandboxRecord pod, Func<SandboxRecord, CancellationToken, Task> hook)
    {
        try
        {
            await hook(pod, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HullException or OperationCanceledException)
        {
            _logger.LogWarning("pod sandbox {Id}: NRI {Event}: {Error}", pod.Id, what, e.Message);
        }
    }

    /// <summary>A pod still being created by a RunPodSandbox in flight cannot be stopped or removed yet (one a crash left can).</summary>
    private static void RefuseWhileCreating(SandboxRecord record)
    {
        if (record.State == SandboxState.Creating && !record.Recovered)
            throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{record.Id}\" is still being created");
    }

    /// <summary>
    /// From here on CreateContainer in this pod fails. The fence pairs with the one in <see cref="ContainerManager"/>'s create:
    /// either the create sees the pod closing, or the stop sees the new container in the index (and waits for its lock).
    /// </summary>
    private static void CloseToNewContainers(ObjectIndex<SandboxRecord>.Entry entry)
    {
        entry.Closing = true;
        Interlocked.MemoryBarrier();
    }

    private async Task ForgetAsync(ObjectIndex<SandboxRecord>.Entry entry)
    {
        var record = entry.Record;
        await _store.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
        entry.Removed = true;
        _index.Remove(record.Id);
        _names.Release(record.Spec.Identity.ReservationKey, record.Id);
    }

    /// <summary>Writes what the sandboxer now says about the pod to the store and the index.</summary>
    private async Task PersistAsync(ObjectIndex<SandboxRecord>.Entry entry, ISandboxController sandboxer, CancellationToken cancellationToken)
    {
        var status = await sandboxer.StatusAsync(entry.Record.Id, verbose: false, cancellationToken).ConfigureAwait(false);
        var state = status.Instance.State == SandboxState.Ready ? SandboxState.Ready : SandboxState.NotReady;
        var updated = entry.Record with { Instance = status.Instance, State = state, ExitedAt = status.ExitedAt ?? entry.Record.ExitedAt };
        await _store.PutAsync(updated, cancellationToken).ConfigureAwait(false);
        entry.Record = updated;
    }

    // ---------------------------------------------------------------- status / list / resources

    /// <summary>The pod as the index has it, plus the sandboxer's verbose info when asked.</summary>
    public async Task<(SandboxRecord Record, IReadOnlyDictionary<string, string> Info)> StatusAsync(string idOrPrefix, bool verbose,
        CancellationToken cancellationToken)
    {
        var record = _index.Find(idOrPrefix).Record;
        IReadOnlyDictionary<string, string> info = new Dictionary<string, string>();
        if (verbose && record.State != SandboxState.Creating && _sandboxers.Find(record.Instance.Sandboxer) is { } sandboxer)
        {
            try
            {
                info = (await sandboxer.StatusAsync(record.Id, true, cancellationToken).ConfigureAwait(false)).Info;
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }
        }
        return (record, info);
    }

    /// <summary>The pod with exactly this id, or null (no prefix matching, never waits).</summary>
    public SandboxRecord? Get(string id) => _index.Get(id);

    /// <summary>A snapshot of the index, filtered; never waits on a pod.</summary>
    public IReadOnlyList<SandboxRecord> List(SandboxFilter? filter = null) => _index.List(filter is null ? null : r =>
        (filter.IdPrefix is not { Length: > 0 } prefix || r.Id.StartsWith(prefix, StringComparison.Ordinal)) &&
        (filter.State is not { } state || Visible(r.State) == state) &&
        (filter.Labels is not { } labels || labels.All(l => r.Spec.Labels.TryGetValue(l.Key, out var v) && v == l.Value)));

    /// <summary>How CRI sees a state: a pod being created is not ready yet.</summary>
    public static SandboxState Visible(SandboxState state) => state == SandboxState.Ready ? SandboxState.Ready : SandboxState.NotReady;

    public async Task<SandboxMetrics> MetricsAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var record = _index.Find(idOrPrefix).Record;
        return await _sandboxers.Get(record.Instance.Sandboxer).MetricsAsync(record.Id, cancellationToken).ConfigureAwait(false);
    }

    public async Task UpdateResourcesAsync(string idOrPrefix, SandboxResources resources, CancellationToken cancellationToken)
    {
        var entry = _index.Find(idOrPrefix);
        await entry.LockedAsync(async () =>
        {
            var record = entry.Record;
            await _sandboxers.Get(record.Instance.Sandboxer).UpdateAsync(record.Id, resources, cancellationToken).ConfigureAwait(false);
            var updated = record with { Spec = record.Spec with { Resources = resources } };
            await _store.PutAsync(updated, CancellationToken.None).ConfigureAwait(false);
            entry.Record = updated;
            await NotifyNriAsync("UpdatePodSandbox", updated, _nri.UpdatePodSandboxAsync).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Port-forward: a connection to 127.0.0.1:<paramref name="port"/> as the pod's processes see it, through its sandboxer.</summary>
    /// <exception cref="HullException">FailedPrecondition when the pod is not ready; Unavailable when nothing listens there.</exception>
    public Task<PodConnection> ConnectAsync(string idOrPrefix, int port, CancellationToken cancellationToken)
    {
        var record = _index.Find(idOrPrefix).Record;
        if (record.State != SandboxState.Ready)
            throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{record.Id}\" is not ready");
        return _sandboxers.Get(record.Instance.Sandboxer).ConnectAsync(record.Id, port, cancellationToken);
    }

    /// <summary>The task endpoint of a pod (exec, attach and port-forward reach its containers through it).</summary>
    public Runtime.Tasks.ITaskService Tasks(string sandboxId)
    {
        var record = _index.Find(sandboxId).Record;
        return _sandboxers.Get(record.Instance.Sandboxer).Tasks(record.Id);
    }

    // ---------------------------------------------------------------- restart

    /// <summary>
    /// At start: loads every persisted pod and container into the indexes and has their sandboxers and task endpoints
    /// say what became of them. A pod or container a crash caught while it was being created is undone; of two pods
    /// holding one name (a crash in the middle of a retry) the newest is kept and the stale one torn down; what the
    /// sandboxers find that the store does not know is swept.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var records = await _store.ListAsync(cancellationToken).ConfigureAwait(false);
        var stale = new List<ObjectIndex<SandboxRecord>.Entry>();
        // Newest first, so the name goes to the newest pod holding it.
        foreach (var record in records.OrderByDescending(r => r.CreatedAt))
        {
            var recovered = await RecoverOneAsync(record, cancellationToken).ConfigureAwait(false);
            if (recovered is null) continue;
            var entry = _index.Add(recovered);
            string name = record.Spec.Identity.ReservationKey;
            if (_names.HolderOf(name) is { } holder && holder != record.Id)
            {
                _logger.LogWarning("pod sandbox {Id}: its name {Name} is held by the newer pod sandbox {Holder}; tearing the stale one down",
                    record.Id, name, holder);
                stale.Add(entry);
                continue;
            }
            _names.Reserve(name, record.Id);
        }
        await _containers.RecoverAsync(cancellationToken).ConfigureAwait(false);
        foreach (var entry in stale)
        {
            try
            {
                await RemoveAsync(entry.Id, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                // Listed as not ready: the kubelet removes it, which retries the teardown.
                _logger.LogError("pod sandbox {Id}: tearing down the stale pod failed: {Error}", entry.Id, e.Message);
            }
        }
        var known = records.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var sandboxer in _sandboxers.All)
            await sandboxer.SweepOrphansAsync(known, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("recovered {Count} pod sandboxes ({Ready} ready)", _index.Count,
            _index.List(r => r.State == SandboxState.Ready).Count);
    }

    /// <summary>One persisted pod as it really is now; null when it was an interrupted create that is now undone.</summary>
    private async Task<SandboxRecord?> RecoverOneAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        if (_sandboxers.Find(record.Instance.Sandboxer) is not { } sandboxer)
        {
            _logger.LogError("pod sandbox {Id}: its sandboxer \"{Sandboxer}\" is not available; it is listed as not ready",
                record.Id, record.Instance.Sandboxer);
            return record with { State = SandboxState.NotReady, Recovered = true };
        }
        if (record.State == SandboxState.Creating)
        {
            _logger.LogWarning("pod sandbox {Id}: hulld stopped while it was being created; undoing it", record.Id);
            try
            {
                await sandboxer.RecoverAsync(record.Spec, record.Instance, record.ExitedAt, cancellationToken).ConfigureAwait(false);
                await sandboxer.ShutdownAsync(record.Id, cancellationToken).ConfigureAwait(false);
                await _store.DeleteAsync(record.Id, cancellationToken).ConfigureAwait(false);
                return null;
            }
            catch (HullException e)
            {
                // Kept as not ready: the kubelet removes it, which retries the cleanup.
                _logger.LogError("pod sandbox {Id}: undoing the interrupted create failed: {Error}", record.Id, e.Message);
                var failed = record with { State = SandboxState.NotReady, ExitedAt = record.ExitedAt ?? DateTimeOffset.UtcNow, Recovered = true };
                await _store.PutAsync(failed, cancellationToken).ConfigureAwait(false);
                return failed;
            }
        }
        var instance = await sandboxer.RecoverAsync(record.Spec, record.Instance, record.ExitedAt, cancellationToken).ConfigureAwait(false);
        if (record.State != SandboxState.Ready || instance.State == SandboxState.Ready) return record with { Recovered = true };
        var lost = record with { Instance = instance, State = SandboxState.NotReady, ExitedAt = DateTimeOffset.UtcNow, Recovered = true };
        await _store.PutAsync(lost, cancellationToken).ConfigureAwait(false);
        return lost;
    }
}
