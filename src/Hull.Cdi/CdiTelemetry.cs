using System.Diagnostics.Metrics;

namespace Hull.Cdi;

/// <summary>
/// Hull.Cdi's meter. Hull.Cdi is a leaf (no Hull.Core), so it spells out Hull.Core.Telemetry.MetricConventions' rules
/// itself: the Prometheus name as the instrument name, its label names in the "hull.labels" instrument tag.
/// </summary>
public static class CdiTelemetry
{
    public static readonly Meter Meter = new("Hull.Cdi");

    internal static readonly Counter<long> Resolutions = Meter.CreateCounter<long>("hull_cdi_resolutions_total", null,
        "CDI device requests of containers (one per container that asks for devices), by result: resolved, or the error kind (InvalidArgument, NotFound, FailedPrecondition).",
        [new("hull.labels", "result")]);

    internal static void Resolved(string result) => Resolutions.Add(1, new KeyValuePair<string, object?>("result", result));
}
