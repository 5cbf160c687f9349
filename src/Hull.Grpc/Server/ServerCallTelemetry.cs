using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Hull.Grpc.Http2;
using Hull.Grpc.Telemetry;

namespace Hull.Grpc.Server;

/// <summary>A call being served, as the debug endpoint lists it: which method, from whom, since when.</summary>
public sealed record InFlightCall(string Path, string Peer, int StreamId, DateTimeOffset StartedAt)
{
    public TimeSpan Age => DateTimeOffset.UtcNow - StartedAt;
}

/// <summary>
/// What a <see cref="GrpcServer"/> records about each call: the request metrics, a server span (child of the caller's
/// W3C <c>traceparent</c> when it sends one), and when it began, on its stream, for the list of calls in flight
/// (<see cref="GrpcServer.InFlightCalls"/>). With no metric listener, no call metrics sink and no span listener a call
/// costs three checks.
/// </summary>
public sealed class ServerCallTelemetry
{
    private static volatile ICallMetricsSink? s_sink;

    /// <summary>
    /// Sends every server's call counts and latencies to <paramref name="sink"/> until the result is disposed, instead
    /// of measuring <see cref="GrpcTelemetry.RequestsMetric"/> and <see cref="GrpcTelemetry.DurationMetric"/>.
    /// </summary>
    public static IDisposable RecordCallsInto(ICallMetricsSink sink)
    {
        s_sink = sink;
        return new SinkRegistration(sink);
    }

    private sealed class SinkRegistration(ICallMetricsSink sink) : IDisposable
    {
        public void Dispose() => Interlocked.CompareExchange(ref s_sink, null, sink);
    }

    /// <summary>The "code" label of each status code, indexed by its value.</summary>
    public static readonly IReadOnlyList<string> StatusNames = Enum.GetValues<StatusCode>().OrderBy(c => (int)c).Select(c => c.ToString()).ToArray();
    private static readonly MethodLabels Unknown = new("unknown", "unknown", "unknown");
    private readonly Dictionary<string, MethodLabels> _methods = new(StringComparer.Ordinal);

    /// <summary>
    /// Every served method's labels by path, one per method in this process: the servers that serve the same method
    /// (the CRI socket and a test's second server, say) count its calls in flight together, and a new server adds nothing.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, MethodLabels> AllMethods =
        new(StringComparer.Ordinal) { [""] = Unknown };

    /// <summary>Registers a served method, so its calls are labelled by name; any other path is labelled "unknown".</summary>
    internal void AddMethod(string path) => _methods[path] = AllMethods.GetOrAdd(path, static path =>
    {
        // "/runtime.v1.RuntimeService/RunPodSandbox" → service "runtime.v1.RuntimeService", method "RunPodSandbox".
        int slash = path.LastIndexOf('/');
        return new MethodLabels(path[1..slash], path[(slash + 1)..], path[1..]);
    });

    /// <summary>Calls in flight by service and method.</summary>
    internal static IEnumerable<Measurement<long>> InFlightByMethod() =>
        AllMethods.Values.Select(l => new Measurement<long>(Interlocked.Read(ref l.InFlight), l.Service, l.Method)).ToArray();

    internal Scope Begin(Http2Stream stream)
    {
        var sink = s_sink;
        bool metrics = sink is not null || GrpcTelemetry.Requests.Enabled;
        bool tracing = GrpcTelemetry.Source.HasListeners();
        if (!metrics && !tracing) return default;
        var labels = _methods.GetValueOrDefault(stream.Path, Unknown);
        if (metrics) Interlocked.Increment(ref labels.InFlight);
        var activity = tracing ? StartSpan(stream, labels) : null;
        stream.CallStarted = Stopwatch.GetTimestamp();
        return new Scope(labels, activity, metrics, sink, stream.CallStarted);
    }

    private static Activity? StartSpan(Http2Stream stream, MethodLabels labels)
    {
        ActivityContext parent = default;
        if (stream.GetHeader("traceparent") is { } traceParent)
            ActivityContext.TryParse(traceParent, stream.GetHeader("tracestate"), isRemote: true, out parent);
        var activity = GrpcTelemetry.Source.StartActivity(labels.SpanName, ActivityKind.Server, parent);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("rpc.system", "grpc");
            activity.SetTag("rpc.service", labels.Service.Value);
            activity.SetTag("rpc.method", labels.Method.Value);
        }
        return activity;
    }

    /// <summary>Labels of one method, made once: the tags every measurement of its calls carries.</summary>
    internal sealed class MethodLabels(string service, string method, string spanName)
    {
        public readonly KeyValuePair<string, object?> Service = new("service", service);
        public readonly KeyValuePair<string, object?> Method = new("method", method);
        public readonly string SpanName = spanName;
        /// <summary>Calls of this method being served now (counted while metrics are on).</summary>
        public long InFlight;
        private volatile BoundRecorder? _recorder;

        /// <summary>This method's recorder in <paramref name="sink"/>, asked for once.</summary>
        public ICallRecorder RecorderIn(ICallMetricsSink sink)
        {
            var bound = _recorder;
            if (bound is null || bound.Sink != sink)
                _recorder = bound = new BoundRecorder(sink, sink.RecorderFor((string)Service.Value!, (string)Method.Value!));
            return bound.Recorder;
        }

        private sealed record BoundRecorder(ICallMetricsSink Sink, ICallRecorder Recorder);
    }

    /// <summary>One call's telemetry, from its HEADERS to its status.</summary>
    internal readonly struct Scope
    {
        private readonly MethodLabels? _labels;
        private readonly Activity? _activity;
        private readonly bool _metrics;
        private readonly ICallMetricsSink? _sink;
        private readonly long _started;

        internal Scope(MethodLabels labels, Activity? activity, bool metrics, ICallMetricsSink? sink, long started)
        {
            _labels = labels;
            _activity = activity;
            _metrics = metrics;
            _sink = sink;
            _started = started;
        }

        public void End(StatusCode code, string? message)
        {
            if (_labels is not { } labels) return;
            if (_metrics)
            {
                Interlocked.Decrement(ref labels.InFlight);
                double seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
                if (_sink is not null) labels.RecorderIn(_sink).Record(code, seconds);
                else
                {
                    GrpcTelemetry.Requests.Add(1, labels.Service, labels.Method, new KeyValuePair<string, object?>("code", StatusNames[(int)code]));
                    GrpcTelemetry.Duration.Record(seconds, labels.Service, labels.Method);
                }
            }
            if (_activity is not null)
            {
                _activity.SetTag("rpc.grpc.status_code", (int)code);
                if (code != StatusCode.OK) _activity.SetStatus(ActivityStatusCode.Error, message);
                _activity.Dispose();
            }
        }
    }
}
