using Hull.Node.E2E.NodeConditions;
using Hull.Node.E2E.Node;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 9: hulld publishes its deprecation condition on this Node (with the kubelet's own identity, see
    /// <see cref="NodeRuntimeSettings.NodeConditions"/>), next to the kubelet's conditions, which keep updating: the
    /// kubelet's status updates do not remove it, and it says what CRI Status says under the same name.
    /// </summary>
    [KubeFact]
    public async Task S9_the_deprecation_condition_is_on_the_Node_next_to_the_kubelets()
    {
        if (Node.Runtime.Name != "hulld") return; // containerd publishes no such condition
        var condition = await Conditions.WaitAsync(Cluster.Api, Node.Name, _ => true, HulldNodeRuntime.NodeResync * 3, "published");
        var cri = (await Node.Runtime.Cri.StatusAsync()).Status.Conditions.Single(c => c.Type == Conditions.Hull);
        Assert.Equal((cri.Status ? "True" : "False", cri.Reason), ((string?)condition["status"], (string?)condition["reason"]));

        var node = await Cluster.GetAsync($"api/v1/nodes/{Node.Name}");
        foreach (var kubelets in new[] { "Ready", "MemoryPressure", "DiskPressure", "PIDPressure" })
            Assert.True(Conditions.Find(node, kubelets) is not null, $"the kubelet's {kubelets} is missing: {node["status"]!["conditions"]!.ToJsonString()}");
        Assert.Equal("True", (string?)Conditions.Find(node, "Ready")!["status"]);

        // The kubelet has written its status since hulld first published (it does whenever its images or conditions change,
        // and the earlier scenarios pulled images), and the condition is still there and still kept up to date.
        var ready = Conditions.Find(node, "Ready")!;
        Log($"Ready heartbeat {ready["lastHeartbeatTime"]}, Hull's condition since {condition["lastTransitionTime"]}");
        var heartbeat = Conditions.Time(condition, "lastHeartbeatTime");
        await Conditions.WaitAsync(Cluster.Api, Node.Name, c => Conditions.Time(c, "lastHeartbeatTime") > heartbeat, HulldNodeRuntime.NodeResync * 3,
            "heartbeat again");
        var describe = await Cluster.KubectlOkAsync("describe", "node", Node.Name);
        Assert.Matches($@"{Conditions.Hull}\s+(True|False)\s", describe);
        Log(await Cluster.KubectlOkAsync("get", "node", Node.Name, "-o", "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}"));
    }
}
