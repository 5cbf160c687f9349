using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Hull.Core;
using Hull.Sandbox.Controller;
using Hull.Sandbox.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox;

/// <summary>A runtime handler as the sandbox layer needs it: its name and the sandboxer that serves it.</summary>
public sealed record SandboxHandler(string Name, string Sandboxer);

/// <summary>What ListPodSandbox filters on; null fields match everything.</summary>
public sealed record SandboxFilter(string? IdPrefix = null, SandboxState? State = null, IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>
/// Pod sandboxes across sandboxers: the RunPodSandbox flow (validate → reserve name → sandboxer Create → Start →
/// persist), stop, remove, status and list, and recovery after a restart. Every sandbox has its own lock; list and
/// status read the in-memory index and never wait on a pod that is busy.
/// </summary>
public sealed class SandboxManager
{
    private static readonly ActivitySource Activity = new("Hull.Sandbox");

    private readonly SandboxStore _store;
    private readonly IReadOnlyDictionary<string, ISandboxController> _sandboxers;
    private readonly IReadOnlyDictionary<string, SandboxHandler> _handlers;
    private readonly string _defaultHandler;
    private readonly ILogger _logger;
    private readonly SandboxNameRegistrar _names = new();
    private readonly ConcurrentDictionary<string, Entry> _index = new(StringComparer.Ordinal);

    /// <param name="handlers">The configured runtime handlers by name.</param>
    /// <param name="defaultHandler">The handler an empty runtime_handler means.</param>
    public SandboxManager(SandboxStore store, IEnumerable<ISandboxController> sandboxers, IReadOnlyDictionary<string, SandboxHandler> handlers,
        string defaultHandler, ILogger<SandboxManager>? logger = null)
    {
        _store = store;
        _sandboxers = sandboxers.ToDictionary(s => s.Name, StringComparer.Ordinal);
        _handlers = handlers;
        _defaultHandler = defaultHandler;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Stops a pod's containers before the pod itself is stopped. The Containers work sets this; until then a pod has
    /// no containers and there is nothing to stop.
    /// </summary>
    public Func<string, CancellationToken, Task>? StopContainers { get; set; }

    /// <summary>Whether a pod still has containers, so RemovePodSandbox removes them first (set by the Containers work).</summary>
    public Func<string, CancellationToken, Task>? RemoveContainers { get; set; }

    public IReadOnlyDictionary<string, SandboxHandler> Handlers => _handlers;

    public ISandboxController Sandboxer(string name) => _sandboxers[name];

    private sealed class Entry(SandboxRecord record)
    {
        public volatile SandboxRecord Record = record;
        public readonly SemaphoreSlim Lock = new(1, 1);
        public bool Removed;
    }

    /// <summary>A new sandbox id: 64 hex digits, as containerd makes them.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>The handler a runtime_handler names ("" is the default one).</summary>
    /// <exception cref="HullException">InvalidArgument naming the known handlers.</exception>
    public SandboxHandler ResolveHandler(string name)
    {
        string effective = name.Length == 0 ? _defaultHandler : name;
        if (_handlers.TryGetValue(effective, out var handler) && _sandboxers.ContainsKey(handler.Sandboxer)) return handler;
        if (_handlers.TryGetValue(effective, out var known))
            throw new HullException(ErrorKind.InvalidArgument,
                $"runtime handler \"{effective}\" uses sandboxer \"{known.Sandboxer}\", which Hull does not have (known: {string.Join(", ", _sandboxers.Keys.Order(StringComparer.Ordinal))})");
        throw new HullException(ErrorKind.InvalidArgument,
            $"no runtime for \"{effective}\" is configured (known runtime handlers: {string.Join(", ", _handlers.Keys.Order(StringComparer.Ordinal).Select(k => $"\"{k}\""))})");
    }

    // ---------------------------------------------------------------- run

    /// <summary>Runs a pod sandbox; returns its id. On any failure, or cancellation, everything is undone and the name released.</summary>
    public async Task<string> RunAsync(PodSandboxSpec request, CancellationToken cancellationToken)
    {
        using var activity = Activity.StartActivity("RunPodSandbox");
        var handler = ResolveHandler(request.RuntimeHandler);
        var spec = request; // the handler as asked ("" = default), which status reports back
        if (string.IsNullOrEmpty(spec.Identity.Name) || string.IsNullOrEmpty(spec.Identity.Namespace) || string.IsNullOrEmpty(spec.Identity.Uid))
            throw new HullException(ErrorKind.InvalidArgument, "pod sandbox metadata needs a name, a namespace and a uid");
        string name = spec.Identity.ReservationKey;
        _names.Reserve(name, spec.Id);
        var sandboxer = _sandboxers[handler.Sandboxer];
        var created = DateTimeOffset.UtcNow;
        var entry = new Entry(new SandboxRecord(spec,
            new SandboxInstance { Id = spec.Id, CreatedAt = created, Sandboxer = sandboxer.Name, State = SandboxState.Creating },
            SandboxState.Creating, created, null));
        bool sandboxerTouched = false;
        try
        {
            // Persisted first, so a crash from here on is undone at the next start instead of leaking.
            await _store.PutAsync(entry.Record, cancellationToken).ConfigureAwait(false);
            _index[spec.Id] = entry;
            sandboxerTouched = true;
            var instance = await sandboxer.CreateAsync(spec, cancellationToken).ConfigureAwait(false);
            instance = await sandboxer.StartAsync(spec.Id, cancellationToken).ConfigureAwait(false);
            var ready = entry.Record with { Instance = instance, State = SandboxState.Ready };
            await _store.PutAsync(ready, cancellationToken).ConfigureAwait(false);
            entry.Record = ready;
            _logger.LogInformation("pod sandbox {Id} ({Name}) is ready", spec.Id, name);
            return spec.Id;
        }
        catch (Exception e)
        {
            _logger.LogWarning("RunPodSandbox {Name}: {Error}; undoing", name, e.Message);
            try
            {
                if (sandboxerTouched) await sandboxer.ShutdownAsync(spec.Id, CancellationToken.None).ConfigureAwait(false);
                await _store.DeleteAsync(spec.Id, CancellationToken.None).ConfigureAwait(false);
                _index.TryRemove(spec.Id, out _);
                _names.Release(name, spec.Id);
            }
            catch (Exception undo)
            {
                // Left in the store as 'creating': the next start (or a RemovePodSandbox) finishes the cleanup.
                _logger.LogError("pod sandbox {Id}: undoing a failed RunPodSandbox failed: {Error}", spec.Id, undo.Message);
                _index.TryRemove(spec.Id, out _);
                _names.Release(name, spec.Id);
            }
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                throw new HullException(ErrorKind.DeadlineExceeded, $"RunPodSandbox for \"{name}\" was cancelled or timed out; what it did was undone", e);
            throw;
        }
    }

    // ---------------------------------------------------------------- stop / remove

    /// <summary>Stops the pod's containers, then the pod (infra process, network, namespaces). Idempotent.</summary>
    public async Task StopAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = Find(idOrPrefix);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (entry.Removed) return;
            var record = entry.Record;
            if (record.State == SandboxState.Creating)
                throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{record.Id}\" is still being created");
            if (StopContainers is { } stopContainers) await stopContainers(record.Id, cancellationToken).ConfigureAwait(false);
            var sandboxer = _sandboxers[record.Instance.Sandboxer];
            Exception? failure = null;
            try
            {
                await sandboxer.StopAsync(record.Id, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                failure = e;
            }
            await PersistAsync(entry, sandboxer, CancellationToken.None).ConfigureAwait(false);
            if (failure is not null) throw failure;
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>Removes the pod and everything it owned (stopping it first). Idempotent: an unknown id is no error.</summary>
    public async Task RemoveAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var entry = TryFind(idOrPrefix);
        if (entry is null) return;
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (entry.Removed) return;
            var record = entry.Record;
            if (record.State == SandboxState.Creating && _index.ContainsKey(record.Id) && !_recovered.ContainsKey(record.Id))
                throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{record.Id}\" is still being created");
            if (StopContainers is { } stopContainers) await stopContainers(record.Id, cancellationToken).ConfigureAwait(false);
            if (RemoveContainers is { } removeContainers) await removeContainers(record.Id, cancellationToken).ConfigureAwait(false);
            var sandboxer = _sandboxers[record.Instance.Sandboxer];
            try
            {
                await sandboxer.ShutdownAsync(record.Id, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException)
            {
                await PersistAsync(entry, sandboxer, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            await _store.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            entry.Removed = true;
            _index.TryRemove(record.Id, out _);
            _recovered.TryRemove(record.Id, out _);
            _names.Release(record.Spec.Identity.ReservationKey, record.Id);
            _logger.LogInformation("pod sandbox {Id} removed", record.Id);
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>Writes what the sandboxer now says about the pod to the store and the index.</summary>
    private async Task PersistAsync(Entry entry, ISandboxController sandboxer, CancellationToken cancellationToken)
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
        var record = Find(idOrPrefix).Record;
        IReadOnlyDictionary<string, string> info = new Dictionary<string, string>();
        if (verbose && record.State != SandboxState.Creating)
        {
            try
            {
                info = (await _sandboxers[record.Instance.Sandboxer].StatusAsync(record.Id, true, cancellationToken).ConfigureAwait(false)).Info;
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }
        }
        return (record, info);
    }

    /// <summary>A snapshot of the index, filtered; never waits on a pod.</summary>
    public IReadOnlyList<SandboxRecord> List(SandboxFilter? filter = null)
    {
        var result = new List<SandboxRecord>();
        foreach (var entry in _index.Values)
        {
            var r = entry.Record;
            if (filter is not null)
            {
                if (filter.IdPrefix is { Length: > 0 } prefix && !r.Id.StartsWith(prefix, StringComparison.Ordinal)) continue;
                if (filter.State is { } state && Visible(r.State) != state) continue;
                if (filter.Labels is { } labels && labels.Any(l => !r.Spec.Labels.TryGetValue(l.Key, out var v) || v != l.Value)) continue;
            }
            result.Add(r);
        }
        result.Sort((a, b) => a.CreatedAt.CompareTo(b.CreatedAt));
        return result;
    }

    /// <summary>How CRI sees a state: a pod being created is not ready yet.</summary>
    public static SandboxState Visible(SandboxState state) => state == SandboxState.Ready ? SandboxState.Ready : SandboxState.NotReady;

    public async Task<SandboxMetrics> MetricsAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var record = Find(idOrPrefix).Record;
        return await _sandboxers[record.Instance.Sandboxer].MetricsAsync(record.Id, cancellationToken).ConfigureAwait(false);
    }

    public async Task UpdateResourcesAsync(string idOrPrefix, SandboxResources resources, CancellationToken cancellationToken)
    {
        var entry = Find(idOrPrefix);
        await entry.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var record = entry.Record;
            await _sandboxers[record.Instance.Sandboxer].UpdateAsync(record.Id, resources, cancellationToken).ConfigureAwait(false);
            var updated = record with { Spec = record.Spec with { Resources = resources } };
            await _store.PutAsync(updated, CancellationToken.None).ConfigureAwait(false);
            entry.Record = updated;
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    /// <summary>The task endpoint of a pod (for the container code).</summary>
    public Runtime.Tasks.ITaskService Tasks(string sandboxId)
    {
        var record = Find(sandboxId).Record;
        return _sandboxers[record.Instance.Sandboxer].Tasks(record.Id);
    }

    private Entry Find(string idOrPrefix) =>
        TryFind(idOrPrefix) ?? throw new HullException(ErrorKind.NotFound, $"pod sandbox \"{idOrPrefix}\" not found");

    /// <summary>By full id, or by a unique id prefix (as containerd's truncindex).</summary>
    private Entry? TryFind(string idOrPrefix)
    {
        if (string.IsNullOrEmpty(idOrPrefix))
            throw new HullException(ErrorKind.InvalidArgument, "a pod sandbox id is required");
        if (_index.TryGetValue(idOrPrefix, out var entry)) return entry;
        Entry? found = null;
        foreach (var (id, e) in _index)
        {
            if (!id.StartsWith(idOrPrefix, StringComparison.Ordinal)) continue;
            if (found is not null)
                throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox id prefix \"{idOrPrefix}\" is ambiguous");
            found = e;
        }
        return found;
    }

    // ---------------------------------------------------------------- restart

    private readonly ConcurrentDictionary<string, byte> _recovered = new(StringComparer.Ordinal);

    /// <summary>
    /// At start: loads every persisted pod into the index, reserves its name, and has its sandboxer take it back and say
    /// whether it is still ready. A pod a crash caught while it was being created is undone and forgotten.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        var records = await _store.ListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var record in records)
        {
            if (!_sandboxers.TryGetValue(record.Instance.Sandboxer, out var sandboxer))
            {
                _logger.LogError("pod sandbox {Id}: its sandboxer \"{Sandboxer}\" is not available; it is listed as not ready",
                    record.Id, record.Instance.Sandboxer);
                var orphan = new Entry(record with { State = SandboxState.NotReady });
                _index[record.Id] = orphan;
                _names.Reserve(record.Spec.Identity.ReservationKey, record.Id);
                continue;
            }
            if (record.State == SandboxState.Creating)
            {
                _logger.LogWarning("pod sandbox {Id}: hulld stopped while it was being created; undoing it", record.Id);
                try
                {
                    await sandboxer.RecoverAsync(record.Spec, record.Instance, cancellationToken).ConfigureAwait(false);
                    await sandboxer.ShutdownAsync(record.Id, cancellationToken).ConfigureAwait(false);
                    await _store.DeleteAsync(record.Id, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                catch (HullException e)
                {
                    // Kept as not ready: the kubelet removes it, which retries the cleanup.
                    _logger.LogError("pod sandbox {Id}: undoing the interrupted create failed: {Error}", record.Id, e.Message);
                    var failed = record with { State = SandboxState.NotReady, ExitedAt = record.ExitedAt ?? DateTimeOffset.UtcNow };
                    await _store.PutAsync(failed, cancellationToken).ConfigureAwait(false);
                    _index[record.Id] = new Entry(failed);
                    _recovered[record.Id] = 0;
                    _names.Reserve(record.Spec.Identity.ReservationKey, record.Id);
                    continue;
                }
            }
            var instance = await sandboxer.RecoverAsync(record.Spec, record.Instance, cancellationToken).ConfigureAwait(false);
            var recovered = record;
            if (record.State == SandboxState.Ready && instance.State != SandboxState.Ready)
            {
                recovered = record with { Instance = instance, State = SandboxState.NotReady, ExitedAt = DateTimeOffset.UtcNow };
                await _store.PutAsync(recovered, cancellationToken).ConfigureAwait(false);
            }
            if (recovered.ExitedAt is { } exitedAt && sandboxer is PodSandbox.PodSandboxController pods) pods.SetExitedAt(record.Id, exitedAt);
            _index[record.Id] = new Entry(recovered);
            _names.Reserve(record.Spec.Identity.ReservationKey, record.Id);
        }
        // What the store does not know (a crash between making a pod's pieces and persisting it) is removed.
        var known = records.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        // microVMs first: their qemu must be gone before the podsandbox sweep removes the directories they live in.
        foreach (var vms in _sandboxers.Values.OfType<MicroVm.MicroVmSandboxController>())
            await vms.SweepOrphansAsync(known, cancellationToken).ConfigureAwait(false);
        foreach (var pods in _sandboxers.Values.OfType<PodSandbox.PodSandboxController>())
            await pods.SweepOrphansAsync(known, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("recovered {Count} pod sandboxes ({Ready} ready)", _index.Count,
            _index.Values.Count(e => e.Record.State == SandboxState.Ready));
    }
}
