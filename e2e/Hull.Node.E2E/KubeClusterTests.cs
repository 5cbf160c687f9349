using System.Net;
using System.Text.Json.Nodes;

namespace Hull.Node.E2E;

/// <summary>
/// <see cref="KubeCluster"/> alone, as the node-condition tests use it: etcd and kube-apiserver only (no scheduler,
/// controllers or kubelet), an admin, and a node identity that Node authorization and NodeRestriction confine to its own
/// Node object, whose status it may PATCH without reading it first.
/// </summary>
public sealed class KubeClusterTests
{
    [KubeFact(node: false)]
    public async Task Api_server_alone_serves_the_admin_and_confines_a_node_identity_to_its_own_Node()
    {
        await using var cluster = await KubeCluster.StartAsync();
        Assert.Equal(["etcd", "kube-apiserver"], cluster.Processes.Select(p => p.Name).ToArray());

        // The admin (system:masters) may do anything; kubectl works with its kubeconfig.
        await cluster.KubectlOkAsync("create", "namespace", "check");
        await cluster.KubectlOkAsync("create", "configmap", "c", "-n", "check", "--from-literal=k=v");
        Assert.Equal("v", await cluster.KubectlOkAsync("get", "configmap", "c", "-n", "check", "-o", "jsonpath={.data.k}"));

        var node = cluster.AddUser("lonely-node", "system:node:lonely-node", "system:nodes");
        using var api = node.Api();
        var secrets = await node.KubectlAsync("get", "secrets", "-A");
        Assert.NotEqual(0, secrets.ExitCode);
        Assert.Contains("forbidden", secrets.Stderr);

        // A node may register itself, and only itself.
        await api.SendAsync(HttpMethod.Post, "api/v1/nodes", NodeObject("lonely-node"));
        var other = await Assert.ThrowsAsync<HttpRequestException>(() => api.SendAsync(HttpMethod.Post, "api/v1/nodes", NodeObject("someone-else")));
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);

        // It may PATCH its own status (a strategic merge on conditions, keyed by type) without a GET first.
        var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        await api.SendAsync(HttpMethod.Patch, "api/v1/nodes/lonely-node/status", JsonNode.Parse($$$"""
            {"status": {"conditions": [{"type": "HullFixtureCheck", "status": "True", "reason": "Patched", "message": "by the node itself",
              "lastHeartbeatTime": "{{{now}}}", "lastTransitionTime": "{{{now}}}"}]}}
            """), "application/strategic-merge-patch+json");
        Assert.Equal("Patched", await cluster.KubectlOkAsync("get", "node", "lonely-node", "-o",
            "jsonpath={.status.conditions[?(@.type==\"HullFixtureCheck\")].reason}"));
    }

    private static JsonNode NodeObject(string name) => new JsonObject
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Node",
        ["metadata"] = new JsonObject { ["name"] = name },
    };
}
