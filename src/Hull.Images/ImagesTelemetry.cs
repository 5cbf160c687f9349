using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hull.Core;
using Hull.Core.Telemetry;

namespace Hull.Images;

/// <summary>Hull.Images' meter and activity source: pulls, bytes fetched and unpacked, the content store, GC, verifiers.</summary>
public static class ImagesTelemetry
{
    public static readonly Meter Meter = new("Hull.Images", HullInfo.Version);
    public static readonly ActivitySource Source = new("Hull.Images", HullInfo.Version);

    private static long _contentBytes = -1;

    internal static readonly Counter<long> Pulls = Meter.Counter("hull_image_pulls_total",
        "Image pulls (one per download; concurrent pulls of one image share it), by result: success or failure.", "result");

    internal static readonly Histogram<double> PullDuration = Meter.Histogram("hull_image_pull_duration_seconds",
        "Time an image pull took, from resolving the name to recording the image, by result.", MetricConventions.LatencyBuckets, "result");

    internal static readonly Counter<long> FetchedBytes = Meter.Counter("hull_image_fetched_bytes_total",
        "Bytes of blobs (layers and configs) received from registries.");

    internal static readonly Counter<long> UnpackedBytes = Meter.Counter("hull_image_unpacked_bytes_total",
        "Bytes of (compressed) layers unpacked into snapshots; divided by the unpack time it is the unpack throughput.");

    internal static readonly Histogram<double> UnpackDuration = Meter.Histogram("hull_image_layer_unpack_duration_seconds",
        "Time to decompress and apply one layer (when it is streamed from the registry, the download is included).", MetricConventions.LatencyBuckets);

    internal static readonly Counter<long> GcRuns = Meter.Counter("hull_image_gc_runs_total",
        "Garbage collections of the content store and snapshots (one after every pull and image removal).");

    internal static readonly Counter<long> GcReclaimedBytes = Meter.Counter("hull_image_gc_reclaimed_bytes_total",
        "Bytes of blobs the garbage collector removed.");

    internal static readonly Counter<long> VerifierDecisions = Meter.Counter("hull_image_verifier_decisions_total",
        "Image verifier judgements on pulls, by decision: allowed or rejected.", "decision");

    public static readonly ObservableGauge<long> ContentStoreBytes = Meter.Gauge("hull_image_content_store_bytes",
        "Bytes of blobs in the content store, as of the last garbage collection.", ObserveContentBytes);

    internal static void PullEnded(bool succeeded, long started)
    {
        var result = new KeyValuePair<string, object?>("result", succeeded ? "success" : "failure");
        Pulls.Add(1, result);
        PullDuration.Record(MetricConventions.SecondsSince(started), result);
    }

    internal static void Collected(long storeBytes, long reclaimed)
    {
        GcRuns.Add(1);
        GcReclaimedBytes.Add(reclaimed);
        Volatile.Write(ref _contentBytes, storeBytes);
    }

    internal static void Verified(bool allowed) =>
        VerifierDecisions.Add(1, new KeyValuePair<string, object?>("decision", allowed ? "allowed" : "rejected"));

    private static IEnumerable<Measurement<long>> ObserveContentBytes()
    {
        long bytes = Volatile.Read(ref _contentBytes);
        return bytes < 0 ? [] : [new Measurement<long>(bytes)];
    }
}
