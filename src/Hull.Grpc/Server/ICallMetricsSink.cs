using Grpc.Core;

namespace Hull.Grpc.Server;

/// <summary>
/// Takes each served call's status code and latency straight from <see cref="ServerCallTelemetry"/>, through one
/// recorder per method, instead of through a MeterListener. Those two measurements per call
/// (<c>hull_grpc_server_requests_total</c> and <c>hull_grpc_server_request_duration_seconds</c>) were most of what
/// metrics cost a CRI call: a listener gets tags to look the series up by on every measurement, a recorder holds its
/// series. While a sink is registered (<see cref="ServerCallTelemetry.RecordCallsInto"/>) those two instruments are
/// not measured; the sink records what they would have.
/// </summary>
public interface ICallMetricsSink
{
    /// <summary>The recorder of one method's calls; asked once per method and sink.</summary>
    ICallRecorder RecorderFor(string service, string method);
}

/// <summary>Records the calls of one method.</summary>
public interface ICallRecorder
{
    void Record(StatusCode code, double seconds);
}
