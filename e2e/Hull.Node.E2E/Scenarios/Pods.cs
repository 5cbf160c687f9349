using System.Text.Json.Nodes;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.Scenarios;

/// <summary>Reading pod objects the way the tests need them: status, conditions, container statuses, waiting.</summary>
public static class Pods
{
    public static string Uid(JsonNode pod) => (string)pod["metadata"]!["uid"]!;
    public static string? Phase(JsonNode pod) => (string?)pod["status"]?["phase"];

    public static bool IsReady(JsonNode? pod) =>
        pod?["status"]?["conditions"]?.AsArray().Any(c => (string?)c?["type"] == "Ready" && (string?)c?["status"] == "True") == true;

    public static JsonNode? Container(JsonNode pod, string name, bool init = false) =>
        pod["status"]?[init ? "initContainerStatuses" : "containerStatuses"]?.AsArray().FirstOrDefault(c => (string?)c?["name"] == name);

    public static int RestartCount(JsonNode pod, string name) => (int?)Container(pod, name)?["restartCount"] ?? 0;

    /// <summary>"containerd://ID" or "hull://ID" as the kubelet reports it; null before the container exists.</summary>
    public static string? ContainerId(JsonNode pod, string name) => (string?)Container(pod, name)?["containerID"];

    /// <summary>Polls the pod until <paramref name="condition"/> holds; fails with the pod's last status.</summary>
    public static async Task<JsonNode> WaitAsync(KubeCluster cluster, string ns, string name, Func<JsonNode, bool> condition,
        TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonNode? pod = null;
        while (DateTime.UtcNow < deadline)
        {
            pod = await cluster.Api.GetAsync($"api/v1/namespaces/{ns}/pods/{name}");
            if (pod is not null && condition(pod)) return pod;
            await Task.Delay(250);
        }
        var events = await cluster.KubectlAsync(["get", "events", "-n", ns, "--field-selector", $"involvedObject.name={name}"]);
        throw new TimeoutException($"pod {ns}/{name}: not {what} within {timeout}\nstatus: {pod?["status"]?.ToJsonString()}\nevents:\n{events.Stdout}");
    }

    /// <summary>Waits until the pod no longer exists in the API (the kubelet has confirmed its termination).</summary>
    public static async Task WaitGoneAsync(KubeCluster cluster, string ns, string name, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (await cluster.Api.GetAsync($"api/v1/namespaces/{ns}/pods/{name}") is not null)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"pod {ns}/{name} still exists after {timeout}");
            await Task.Delay(250);
        }
    }

    /// <summary>Waits for an event with <paramref name="reason"/> about the object; returns its message.</summary>
    public static async Task<string> WaitForEventAsync(KubeCluster cluster, string ns, string name, string reason, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var events = await cluster.Api.ListAsync($"api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3D{name}");
            if (events.FirstOrDefault(e => (string?)e["reason"] == reason) is { } found) return (string?)found["message"] ?? "";
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no {reason} event for {ns}/{name} within {timeout}; events: " +
                    string.Join("; ", events.Select(e => $"{e["reason"]}: {e["message"]}")));
            await Task.Delay(500);
        }
    }
}
