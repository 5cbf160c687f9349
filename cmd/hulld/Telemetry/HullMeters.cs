using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Hull.Core.Telemetry;

namespace Hulld.Telemetry;

/// <summary>One metric family as Prometheus shows it, read from its instrument (see <see cref="MetricConventions"/>).</summary>
internal sealed record MetricFamily(string Name, string Type, string Help, IReadOnlyList<string> Labels, IReadOnlyList<double>? Buckets, string Meter)
{
    public static MetricFamily? From(Instrument instrument)
    {
        if (!instrument.Meter.Name.StartsWith("Hull.", StringComparison.Ordinal)) return null;
        string? type = instrument switch
        {
            Counter<long> or Counter<double> or ObservableCounter<long> => "counter",
            UpDownCounter<long> or ObservableGauge<long> or ObservableGauge<double> or ObservableUpDownCounter<long> => "gauge",
            Histogram<double> => "histogram",
            _ => null,
        };
        if (type is null) return null;
        string labels = instrument.Tags?.FirstOrDefault(t => t.Key == MetricConventions.LabelsTag).Value as string ?? "";
        var buckets = (instrument as Histogram<double>)?.Advice?.HistogramBucketBoundaries;
        return new MetricFamily(instrument.Name, type, instrument.Description ?? "",
            labels.Split(',', StringSplitOptions.RemoveEmptyEntries), buckets, instrument.Meter.Name);
    }
}

/// <summary>Every Hull library's telemetry holder: a <c>Meter</c> and/or <c>ActivitySource</c> named <c>Hull.&lt;Library&gt;</c>.</summary>
internal static class HullMeters
{
    public static readonly IReadOnlyList<Type> Holders =
    [
        typeof(CoreTelemetry),
        typeof(Hull.Grpc.Telemetry.GrpcTelemetry),
        typeof(Hull.Images.ImagesTelemetry),
        typeof(Hull.Runtime.RuntimeTelemetry),
        typeof(Hull.Sandbox.SandboxTelemetry),
        typeof(Hull.Cdi.CdiTelemetry),
        typeof(Hull.Nri.NriTelemetry),
        typeof(Hull.Pods.PodsTelemetry),
    ];

    /// <summary>The ActivitySource names hulld's tracer provider listens to.</summary>
    public const string SourcePattern = "Hull.*";

    /// <summary>Creates every instrument now, so a listener started afterwards sees them all (and documentation can list them).</summary>
    public static void EnsureCreated()
    {
        foreach (var holder in Holders) RuntimeHelpers.RunClassConstructor(holder.TypeHandle);
    }

    /// <summary>Every Hull metric family, by name.</summary>
    public static IReadOnlyList<MetricFamily> Families()
    {
        EnsureCreated();
        var families = new List<MetricFamily>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, _) =>
        {
            if (MetricFamily.From(instrument) is { } family) lock (families) families.Add(family);
        };
        listener.Start();
        return families.DistinctBy(f => f.Name).OrderBy(f => f.Name, StringComparer.Ordinal).ToArray();
    }
}
