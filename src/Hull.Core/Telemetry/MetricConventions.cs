using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Hull.Core.Telemetry;

/// <summary>
/// How Hull declares a metric on a plain <see cref="Meter"/> so that it can be exported to Prometheus and documented
/// without measuring anything first: the instrument's name is its Prometheus name (<c>hull_…</c>, with <c>_total</c>,
/// <c>_seconds</c>, <c>_bytes</c>), its description is the HELP text, the label names it is recorded with are listed
/// in the instrument tag <see cref="LabelsTag"/> (comma-separated), and a histogram's buckets are its
/// <see cref="InstrumentAdvice{T}.HistogramBucketBoundaries"/>. Every label takes values from a set fixed in code or
/// configuration (no pod names, no container IDs). Hull.Grpc, which may not use Hull.Core, follows the same rules.
/// </summary>
public static class MetricConventions
{
    /// <summary>Instrument tag listing the label names every measurement of the instrument carries.</summary>
    public const string LabelsTag = "hull.labels";

    /// <summary>Latency buckets from 100 µs to 60 s: CRI calls, NRI calls, pulls, unpacks.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    /// <summary>The instrument tags of a metric recorded with <paramref name="labels"/>.</summary>
    public static KeyValuePair<string, object?>[] Labels(params string[] labels) => [new(LabelsTag, string.Join(',', labels))];

    public static Counter<long> Counter(this Meter meter, string name, string help, params string[] labels) =>
        meter.CreateCounter<long>(name, null, help, Labels(labels));

    public static UpDownCounter<long> UpDownCounter(this Meter meter, string name, string help, params string[] labels) =>
        meter.CreateUpDownCounter<long>(name, null, help, Labels(labels));

    public static Histogram<double> Histogram(this Meter meter, string name, string help, IReadOnlyList<double> buckets, params string[] labels) =>
        meter.CreateHistogram(name, null, help, Labels(labels), new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    public static ObservableGauge<long> Gauge(this Meter meter, string name, string help, Func<IEnumerable<Measurement<long>>> observe,
        params string[] labels) =>
        meter.CreateObservableGauge(name, observe, null, help, Labels(labels));

    /// <summary>Seconds since a <see cref="Stopwatch.GetTimestamp"/>.</summary>
    public static double SecondsSince(long timestamp) => Stopwatch.GetElapsedTime(timestamp).TotalSeconds;
}
