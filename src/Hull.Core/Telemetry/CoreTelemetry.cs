using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hull.Core.Deprecations;

namespace Hull.Core.Telemetry;

/// <summary>Hull.Core's meter: events and deprecations.</summary>
public static class CoreTelemetry
{
    public static readonly Meter Meter = new("Hull.Core", HullInfo.Version);
    public static readonly ActivitySource Source = new("Hull.Core", HullInfo.Version);

    internal static readonly Counter<long> EventsSent = Meter.Counter("hull_events_sent_total",
        "Events handed to subscribers (each subscriber counts once), by subscriber kind.", "subscriber");

    internal static readonly Counter<long> EventsDropped = Meter.Counter("hull_events_dropped_total",
        "Events a subscriber lost because its queue was full (the oldest are dropped), by subscriber kind.", "subscriber");

    private static readonly ObservedSet<DeprecationRegistry> Registries = new();

    /// <summary>1 for each deprecation ID recorded (and not yet cleared), so an alert can fire on any of them.</summary>
    public static readonly ObservableGauge<long> DeprecationsInUse = Meter.Gauge("hull_deprecations_in_use",
        "Deprecated features in use on this node: 1 per deprecation ID recorded (see `hullctl deprecations`).", ObserveDeprecations, "id");

    internal static void Track(DeprecationRegistry registry) => Registries.Add(registry);

    private static IEnumerable<Measurement<long>> ObserveDeprecations() =>
        Registries.Live().SelectMany(r => r.Snapshot()).Select(w => w.Id).Distinct(StringComparer.Ordinal)
            .Select(id => new Measurement<long>(1, new KeyValuePair<string, object?>("id", id)));
}
