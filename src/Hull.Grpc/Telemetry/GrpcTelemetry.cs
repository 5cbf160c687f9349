using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hull.Grpc.Http2;

namespace Hull.Grpc.Telemetry;

/// <summary>
/// Hull.Grpc's meter and activity source. Metrics follow Hull.Core.Telemetry.MetricConventions (which Hull.Grpc may
/// not reference): the Prometheus name as the instrument name, the label names in the <see cref="LabelsTag"/> tag.
/// </summary>
public static class GrpcTelemetry
{
    /// <summary>The same key as Hull.Core.Telemetry.MetricConventions.LabelsTag.</summary>
    internal const string LabelsTag = "hull.labels";

    public static readonly Meter Meter = new("Hull.Grpc");
    public static readonly ActivitySource Source = new("Hull.Grpc");

    /// <summary>100 µs to 60 s, as Hull.Core.Telemetry.MetricConventions.LatencyBuckets.</summary>
    private static readonly IReadOnlyList<double> LatencyBuckets =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    /// <summary>The names of the two per-call instruments, which a <see cref="Server.ICallMetricsSink"/> records instead.</summary>
    public const string RequestsMetric = "hull_grpc_server_requests_total", DurationMetric = "hull_grpc_server_request_duration_seconds";

    internal static readonly Counter<long> Requests = Meter.CreateCounter<long>(RequestsMetric, null,
        "gRPC calls served (CRI and the admin API), by service, method and status code; unknown paths count as service and method \"unknown\".",
        Labels("service", "method", "code"));

    internal static readonly Histogram<double> Duration = Meter.CreateHistogram(DurationMetric, null,
        "Time from a call's HEADERS to its status, by service and method.", Labels("service", "method"),
        new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    // Observed at scrape time from per-method counts (Server.ServerCallTelemetry): two measurements less per call.
    internal static readonly ObservableUpDownCounter<long> InFlight = Meter.CreateObservableUpDownCounter("hull_grpc_server_requests_in_flight",
        Server.ServerCallTelemetry.InFlightByMethod, null, "gRPC calls being served now, by service and method.", Labels("service", "method"));

    internal static readonly UpDownCounter<long> OpenConnections = Meter.CreateUpDownCounter<long>("hull_http2_connections", null,
        "HTTP/2 connections open now.", Labels());

    internal static readonly Counter<long> Connections = Meter.CreateCounter<long>("hull_http2_connections_total", null,
        "HTTP/2 connections accepted, or refused because the connection limit was reached.", Labels("result"));

    internal static readonly Counter<long> Streams = Meter.CreateCounter<long>("hull_http2_streams_total", null,
        "HTTP/2 streams (requests) opened.", Labels());

    internal static readonly Counter<long> Resets = Meter.CreateCounter<long>("hull_http2_stream_resets_total", null,
        "RST_STREAM frames sent by the server or received from clients, by error code; a burst of received CANCELs is what a rapid-reset attack looks like.",
        Labels("direction", "code"));

    internal static readonly Counter<long> GoAways = Meter.CreateCounter<long>("hull_http2_goaways_sent_total", null,
        "GOAWAY frames sent, by error code: NO_ERROR at shutdown, ENHANCE_YOUR_CALM for abusive clients (floods, connection limit), others for protocol errors.",
        Labels("code"));

    internal static readonly Counter<long> ConnectionTimeouts = Meter.CreateCounter<long>("hull_http2_connection_timeouts_total", null,
        "HTTP/2 connections closed by a timeout, by which one (preface, keepalive, write, header block).", Labels("timeout"));

    internal static readonly Counter<long> ReceivedBytes = Meter.CreateCounter<long>("hull_http2_received_bytes_total", null,
        "Bytes of HTTP/2 frames received.", Labels());

    internal static readonly Counter<long> SentBytes = Meter.CreateCounter<long>("hull_http2_sent_bytes_total", null,
        "Bytes of HTTP/2 frames sent.", Labels());

    private static readonly string[] ErrorCodeNames =
    [
        "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
        "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
    ];

    /// <summary>The RFC 9113 name of an error code; codes a client makes up are "unknown", so the label stays bounded.</summary>
    internal static string ErrorCodeName(Http2ErrorCode code) => (uint)code < ErrorCodeNames.Length ? ErrorCodeNames[(int)code] : "unknown";

    internal static void CountReset(bool sent, Http2ErrorCode code)
    {
        if (Resets.Enabled)
            Resets.Add(1, new KeyValuePair<string, object?>("direction", sent ? "sent" : "received"), new("code", ErrorCodeName(code)));
    }

    internal static void CountGoAway(Http2ErrorCode code)
    {
        if (GoAways.Enabled) GoAways.Add(1, new KeyValuePair<string, object?>("code", ErrorCodeName(code)));
    }

    internal static void CountTimeout(string timeout)
    {
        if (ConnectionTimeouts.Enabled) ConnectionTimeouts.Add(1, new KeyValuePair<string, object?>("timeout", timeout));
    }

    private static KeyValuePair<string, object?>[] Labels(params string[] labels) => [new(LabelsTag, string.Join(',', labels))];
}
