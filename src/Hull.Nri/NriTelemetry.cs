using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hull.Core;
using Hull.Core.Telemetry;

namespace Hull.Nri;

/// <summary>Hull.Nri's meter and activity source: calls to plugins by plugin and event, their latency and timeouts.</summary>
public static class NriTelemetry
{
    public static readonly Meter Meter = new("Hull.Nri", HullInfo.Version);
    public static readonly ActivitySource Source = new("Hull.Nri", HullInfo.Version);

    // The plugin label is the plugin's index-name: the plugins installed on, or connected to, this node (root only).
    internal static readonly Counter<long> Calls = Meter.Counter("hull_nri_plugin_calls_total",
        "Events sent to NRI plugins, by plugin, event and result (ok, error, timeout, gone, cancelled).", "plugin", "event", "result");

    internal static readonly Histogram<double> Duration = Meter.Histogram("hull_nri_plugin_call_duration_seconds",
        "Time an NRI plugin took to handle an event, by event.", MetricConventions.LatencyBuckets, "event");

    internal static readonly Counter<long> Timeouts = Meter.Counter("hull_nri_plugin_timeouts_total",
        "NRI plugin calls that did not answer within plugin_request_timeout, by plugin and event.", "plugin", "event");

    internal static void Called(string plugin, string e, string result, long started)
    {
        var pluginTag = new KeyValuePair<string, object?>("plugin", plugin);
        var eventTag = new KeyValuePair<string, object?>("event", e);
        Calls.Add(1, pluginTag, eventTag, new KeyValuePair<string, object?>("result", result));
        Duration.Record(MetricConventions.SecondsSince(started), eventTag);
        if (result == "timeout") Timeouts.Add(1, pluginTag, eventTag);
    }
}
