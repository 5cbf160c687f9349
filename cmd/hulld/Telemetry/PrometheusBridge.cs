using System.Diagnostics.Metrics;
using Grpc.Core;
using Hull.Grpc.Server;
using Hull.Grpc.Telemetry;
using Prometheus;

namespace Hulld.Telemetry;

/// <summary>
/// Exports Hull's meters through a prometheus-net registry, with the process and .NET runtime collectors.
/// prometheus-net 8.2.1's own MeterAdapter is not used: it exports counters as gauges, drops a series after five minutes
/// without measurements (a counter would reset), puts the instrument type into HELP, and allocates a sorted copy of
/// the tags for every measurement. This bridge creates each family once, from its declaration
/// (<see cref="MetricFamily"/>), as the right Prometheus type, and records into it; when metrics are off it is never
/// started, no instrument is enabled, and measuring costs a flag check. The two measurements every gRPC call makes
/// come straight from the server instead (<see cref="ICallMetricsSink"/>), into children held per method.
/// </summary>
internal sealed class PrometheusBridge : IDisposable, ICallMetricsSink
{
    private readonly MeterListener _listener = new();
    private readonly IMetricFactory _factory;
    private readonly Dictionary<string, Collector> _collectors = new(StringComparer.Ordinal);
    private readonly IDisposable _calls;
    private bool _disposed;

    public PrometheusBridge()
    {
        // The default registry would start prometheus-net's own adapters (double-exporting Hull's meters); use a registry of our own.
        Registry = Metrics.NewCustomRegistry();
        _factory = Metrics.WithCustomRegistry(Registry);
        DotNetStats.Register(Registry);
        HullMeters.EnsureCreated();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (MetricFamily.From(instrument) is { } family) listener.EnableMeasurementEvents(instrument, Bind(family, instrument));
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((Binding)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((Binding)state!).Record(value, tags));
        _listener.Start();
        _calls = ServerCallTelemetry.RecordCallsInto(this);
        Registry.AddBeforeCollectCallback(() =>
        {
            if (!Volatile.Read(ref _disposed)) _listener.RecordObservableInstruments();
        });
    }

    public CollectorRegistry Registry { get; }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        _calls.Dispose();
        _listener.Dispose();
    }

    public ICallRecorder RecorderFor(string service, string method)
    {
        lock (_collectors)
            return new CallRecorder((Counter)_collectors[GrpcTelemetry.RequestsMetric],
                ((Histogram)_collectors[GrpcTelemetry.DurationMetric]).WithLabels(service, method), service, method);
    }

    private Binding Bind(MetricFamily family, Instrument instrument)
    {
        string[] labels = [.. family.Labels];
        Binding binding = instrument switch
        {
            Counter<long> or Counter<double> => new CounterBinding(_factory.CreateCounter(family.Name, family.Help, labels), labels),
            Histogram<double> => new HistogramBinding(_factory.CreateHistogram(family.Name, family.Help, labels,
                new HistogramConfiguration { Buckets = family.Buckets?.ToArray() ?? Hull.Core.Telemetry.MetricConventions.LatencyBuckets.ToArray() }), labels),
            _ => new GaugeBinding(_factory.CreateGauge(family.Name, family.Help, labels), labels, set: instrument.IsObservable),
        };
        lock (_collectors) _collectors[family.Name] = binding.Collector;
        return binding;
    }

    /// <summary>One method's request counter (a child per status code, made on its first call) and latency histogram.</summary>
    private sealed class CallRecorder(Counter requests, Histogram.Child latency, string service, string method) : ICallRecorder
    {
        private readonly Counter.Child?[] _byCode = new Counter.Child?[ServerCallTelemetry.StatusNames.Count];

        public void Record(StatusCode code, double seconds)
        {
            (_byCode[(int)code] ??= requests.WithLabels(service, method, ServerCallTelemetry.StatusNames[(int)code])).Inc();
            latency.Observe(seconds);
        }
    }

    /// <summary>Where one instrument's measurements go, with its label names in declaration order.</summary>
    private abstract class Binding(string[] labels)
    {
        public abstract Collector Collector { get; }

        protected string[] Labels { get; } = labels;

        protected bool Unlabelled { get; } = labels.Length == 0;

        public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

        /// <summary>The measurement's label value for <paramref name="label"/> ("" when it lacks it).</summary>
        public static string ValueOf(string label, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
                if (tag.Key == label) return tag.Value as string ?? tag.Value?.ToString() ?? "";
            return "";
        }

        /// <summary>The measurement's label values in declaration order.</summary>
        protected string[] Values(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var values = new string[Labels.Length];
            for (int i = 0; i < Labels.Length; i++) values[i] = ValueOf(Labels[i], tags);
            return values;
        }
    }

    /// <summary>
    /// A labelled instrument's children, kept by their label values: every CRI call records several measurements, and
    /// looking the child up in prometheus-net (an array and a label sequence per call) cost more than the recording.
    /// </summary>
    private abstract class LabelledBinding<TChild>(string[] labels, Func<string[], TChild> create) : Binding(labels)
        where TChild : class
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<LabelValues, TChild> _children = new();

        protected TChild ChildFor(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Labels.Length > LabelValues.Capacity) return create(Values(tags));
            var key = LabelValues.From(Labels, tags);
            return _children.TryGetValue(key, out var child) ? child : _children.GetOrAdd(key, create(Values(tags)));
        }
    }

    /// <summary>Up to four label values, compared as strings, as a dictionary key that needs no allocation.</summary>
    private readonly record struct LabelValues(string A, string B, string C, string D)
    {
        public const int Capacity = 4;

        public static LabelValues From(string[] labels, ReadOnlySpan<KeyValuePair<string, object?>> tags) => new(
            labels.Length > 0 ? Binding.ValueOf(labels[0], tags) : "",
            labels.Length > 1 ? Binding.ValueOf(labels[1], tags) : "",
            labels.Length > 2 ? Binding.ValueOf(labels[2], tags) : "",
            labels.Length > 3 ? Binding.ValueOf(labels[3], tags) : "");
    }

    private sealed class CounterBinding(Counter counter, string[] labels) : LabelledBinding<Counter.Child>(labels, counter.WithLabels)
    {
        public override Collector Collector => counter;

        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Unlabelled) counter.Inc(value);
            else ChildFor(tags).Inc(value);
        }
    }

    private sealed class GaugeBinding(Gauge gauge, string[] labels, bool set) : LabelledBinding<Gauge.Child>(labels, gauge.WithLabels)
    {
        public override Collector Collector => gauge;

        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            IGauge child = Unlabelled ? gauge : ChildFor(tags);
            if (set) child.Set(value);
            else child.Inc(value);
        }
    }

    private sealed class HistogramBinding(Histogram histogram, string[] labels) : LabelledBinding<Histogram.Child>(labels, histogram.WithLabels)
    {
        public override Collector Collector => histogram;

        public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Unlabelled) histogram.Observe(value);
            else ChildFor(tags).Observe(value);
        }
    }
}
