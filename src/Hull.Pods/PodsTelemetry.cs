using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hull.Core;
using Hull.Core.Telemetry;
using Hull.Pods.Stores;
using Hull.Runtime.Handlers;
using Hull.Sandbox.Controller;

namespace Hull.Pods;

/// <summary>Hull.Pods' meter and activity source: pods and containers by state and runtime handler, start latency, exits.</summary>
public static class PodsTelemetry
{
    public static readonly Meter Meter = new("Hull.Pods", HullInfo.Version);
    public static readonly ActivitySource Source = new("Hull.Pods", HullInfo.Version);

    private static readonly ObservedSet<ContainerManager> Observed = new();

    public static readonly ObservableGauge<long> Pods = Meter.Gauge("hull_pods",
        "Pod sandboxes by state (creating, ready, notready) and runtime handler.", ObservePods, "state", "handler");

    public static readonly ObservableGauge<long> Containers = Meter.Gauge("hull_containers",
        "Containers by state (creating, created, running, exited, unknown) and the runtime handler of their pod.", ObserveContainers, "state", "handler");

    internal static readonly Histogram<double> PodStartDuration = Meter.Histogram("hull_pod_start_duration_seconds",
        "Time from RunPodSandbox to the StartContainer of each of the pod's first-attempt containers, by runtime handler.",
        MetricConventions.LatencyBuckets, "handler");

    internal static readonly Counter<long> ContainerExits = Meter.Counter("hull_container_exits_total",
        "Containers that exited, by reason: Completed (exit code 0), Error, OOMKilled, StartError.", "reason");

    private static readonly string[] ExitReasons = ["Completed", "Error", "OOMKilled", "StartError"];

    /// <summary>Counts the pods and containers <paramref name="manager"/> knows at every scrape.</summary>
    internal static void Observe(ContainerManager manager) => Observed.Add(manager);

    internal static void PodStarted(TimeSpan sinceRunPodSandbox, string handler) =>
        PodStartDuration.Record(sinceRunPodSandbox.TotalSeconds, new KeyValuePair<string, object?>("handler", handler));

    internal static void ContainerExited(string reason) =>
        ContainerExits.Add(1, new KeyValuePair<string, object?>("reason", ExitReasons.Contains(reason) ? reason : "Error"));

    /// <summary>A configured handler's name (an unknown one, from a pod of an old config, is "unknown": the label stays bounded).</summary>
    internal static string HandlerLabel(RuntimeHandlers handlers, string requested) => handlers.Find(requested)?.Name ?? "unknown";

    private static IEnumerable<Measurement<long>> ObservePods()
    {
        foreach (var set in Observed.Live().Select(m => m.Observed))
        {
            var counts = set.Handlers.All.SelectMany(h => Enum.GetValues<SandboxState>().Select(s => (State: s, Handler: h.Name)))
                .ToDictionary(k => k, _ => 0L);
            foreach (var pod in set.Pods.List())
            {
                var key = (pod.State, HandlerLabel(set.Handlers, pod.Spec.RuntimeHandler));
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
            foreach (var ((state, handler), n) in counts)
                yield return new Measurement<long>(n, new("state", state.ToString().ToLowerInvariant()), new("handler", handler));
        }
    }

    private static IEnumerable<Measurement<long>> ObserveContainers()
    {
        foreach (var set in Observed.Live().Select(m => m.Observed))
        {
            var counts = set.Handlers.All.SelectMany(h => Enum.GetValues<ContainerState>().Select(s => (State: s, Handler: h.Name)))
                .ToDictionary(k => k, _ => 0L);
            foreach (var container in set.Containers.List())
            {
                string handler = set.Pods.Get(container.SandboxId) is { } pod ? HandlerLabel(set.Handlers, pod.Spec.RuntimeHandler) : "unknown";
                var key = (container.State, handler);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
            foreach (var ((state, handler), n) in counts)
                yield return new Measurement<long>(n, new("state", state.ToString().ToLowerInvariant()), new("handler", handler));
        }
    }
}
