using Hull.Core.Telemetry;
using Microsoft.Extensions.Logging;

namespace Hull.Core.Deprecations;

public sealed record DeprecationWarning(string Id, string Message, DateTimeOffset LastOccurrence, long Occurrences);

/// <summary>Where occurrences are persisted; the metadata store implements it so warnings survive restarts.</summary>
public interface IDeprecationStore
{
    IReadOnlyList<DeprecationWarning> Load();
    void Save(DeprecationWarning warning);
}

/// <summary>
/// Records that a deprecated feature was used. Recording never fails the request that triggered
/// it: a store error is logged and the warning is kept in memory.
/// </summary>
public sealed class DeprecationRegistry
{
    private readonly Dictionary<string, DeprecationWarning> _warnings = new();
    private readonly IDeprecationStore? _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;

    public DeprecationRegistry(IDeprecationStore? store, ILogger logger, TimeProvider? clock = null)
    {
        _store = store;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        CoreTelemetry.Track(this);
        if (store is null) return;
        try
        {
            foreach (var w in store.Load()) _warnings[w.Id] = w;
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "cannot load recorded deprecation warnings; starting with none");
        }
    }

    /// <summary>Raised after each recording, outside the registry's lock (the node-condition reporter publishes a new ID at once).</summary>
    public event Action<DeprecationWarning>? Recorded;

    public void Record(string id, string? message = null)
    {
        DeprecationWarning warning;
        lock (_warnings)
        {
            long count = _warnings.TryGetValue(id, out var old) ? old.Occurrences + 1 : 1;
            warning = new DeprecationWarning(id, message ?? DeprecationIds.MessageFor(id), _clock.GetUtcNow(), count);
            _warnings[id] = warning;
        }
        _logger.LogWarning("deprecated: {Id}: {Message}", id, warning.Message);
        try
        {
            _store?.Save(warning);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "cannot persist deprecation warning {Id}", id);
        }
        Recorded?.Invoke(warning);
    }

    public IReadOnlyList<DeprecationWarning> Snapshot()
    {
        lock (_warnings) return _warnings.Values.OrderBy(w => w.Id, StringComparer.Ordinal).ToArray();
    }
}
