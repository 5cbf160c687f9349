using System.Net;
using System.Text.Json.Nodes;
using Hull.Core.Deprecations;
using Hull.Kube;
using k8s.Autorest;

namespace Hull.Kube.Tests;

public sealed class NodeConditionPatchTests
{
    [Fact]
    public void The_patch_holds_only_Hulls_condition_with_both_times_in_whole_seconds_UTC()
    {
        var state = new DeprecationConditionState(false, DeprecationCondition.InUseReason, "1 deprecated feature in use: [a] b", ["a"]);
        var heartbeat = new DateTimeOffset(2025, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));
        var patch = NodeConditionPatch.Build(state, heartbeat, heartbeat.AddHours(-1));
        Assert.Equal(JsonNode.Parse("""
            {"status":{"conditions":[{"type":"ContainerRuntimeHasNoDeprecations","status":"False","reason":"DeprecatedFeaturesInUse",
              "message":"1 deprecated feature in use: [a] b","lastHeartbeatTime":"2025-03-04T03:06:07Z","lastTransitionTime":"2025-03-04T02:06:07Z"}]}}
            """)!.ToJsonString(), patch.ToJsonString());
    }

    [Fact]
    public void Forbidden_names_the_node_the_server_the_API_servers_message_and_what_to_grant()
    {
        var forbidden = Response(HttpStatusCode.Forbidden,
            """{"kind":"Status","message":"nodes \"n1\" is forbidden: User \"u\" cannot patch resource \"nodes/status\""}""");
        var e = new NodePatchException("n1", new Uri("https://127.0.0.1:6443/"), forbidden);
        Assert.Equal("cannot patch the status of node \"n1\" on https://127.0.0.1:6443/: 403 Forbidden: nodes \"n1\" is forbidden: " +
            "User \"u\" cannot patch resource \"nodes/status\" (the identity needs `patch` on `nodes/status`: see the ClusterRole in deploy/kubernetes/hull.yaml, " +
            "or use the kubelet's kubeconfig)", e.Message);
        Assert.False(NodeConditionReporter.IsTransient(e));
    }

    [Theory]
    [InlineData(HttpStatusCode.NotFound, true)] // the kubelet has not registered the Node yet
    [InlineData(HttpStatusCode.ServiceUnavailable, true)]
    [InlineData(HttpStatusCode.TooManyRequests, true)]
    [InlineData(HttpStatusCode.Unauthorized, false)]
    [InlineData(HttpStatusCode.UnprocessableEntity, false)]
    public void Unreachable_busy_or_not_yet_registered_is_retried_refusals_are_not(HttpStatusCode status, bool transient)
    {
        Assert.Equal(transient, NodeConditionReporter.IsTransient(new NodePatchException("n", new Uri("https://x/"), Response(status, ""))));
        Assert.True(NodeConditionReporter.IsTransient(new HttpRequestException("Connection refused")));
        Assert.True(NodeConditionReporter.IsTransient(new DeprecationSourceException("hulld does not answer")));
        Assert.False(NodeConditionReporter.IsTransient(new Hull.Core.HullException(Hull.Core.ErrorKind.FailedPrecondition, "no kubeconfig")));
    }

    private static HttpOperationException Response(HttpStatusCode status, string content) => new($"Operation returned an invalid status code '{status}'")
    {
        Response = new HttpResponseMessageWrapper(new HttpResponseMessage(status), content),
    };
}
