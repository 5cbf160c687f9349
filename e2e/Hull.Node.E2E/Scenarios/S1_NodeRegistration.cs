namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>Scenario 1: the node registers and becomes Ready; kubectl shows the runtime's name and version from CRI Version.</summary>
    [KubeFact]
    public async Task S1_node_is_Ready_and_kubectl_shows_the_runtime_name_and_version_from_CRI()
    {
        var version = await Node.Runtime.Cri.VersionAsync();
        Assert.Equal("v1", version.RuntimeApiVersion);
        if (Node.Runtime.Name == "hulld") Assert.Equal("hull", version.RuntimeName);

        var wide = await Cluster.KubectlOkAsync("get", "node", Node.Name, "-o", "wide", "--no-headers");
        Log(wide);
        var columns = wide.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE (several words) KERNEL-VERSION CONTAINER-RUNTIME
        Assert.Equal(Node.Name, columns[0]);
        Assert.Equal("Ready", columns[1]);
        Assert.Equal(KubeTools.Version, columns[4]);
        Assert.Equal(Node.NodeIp, columns[5]);
        Assert.Equal($"{version.RuntimeName}://{version.RuntimeVersion}", columns[^1]);

        var info = (await Cluster.GetAsync($"api/v1/nodes/{Node.Name}"))["status"]!["nodeInfo"]!;
        Assert.Equal($"{version.RuntimeName}://{version.RuntimeVersion}", (string?)info["containerRuntimeVersion"]);
        // "PLEG is not healthy: pleg has yet to be successful" is normal while the kubelet starts; this one is not.
        Assert.DoesNotContain("pleg was last seen active", Node.KubeletLog);
    }
}
