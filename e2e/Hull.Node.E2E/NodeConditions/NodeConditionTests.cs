using Grpc.Core;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;
using Xunit.Abstractions;

namespace Hull.Node.E2E.NodeConditions;

/// <summary>
/// hulld publishing its deprecation condition on a Node of a real API server (issue 18), with the node's own identity
/// (<c>system:node:NAME</c>, which may patch but not get its Node's status) unless a test says otherwise. Each test
/// registers its own Node with stand-ins for the kubelet's conditions and one of its own (the real kubelet's are
/// checked in NodeScenarios S9). About 1.5 minutes.
/// </summary>
[Collection(ApiServerCollection.Name)]
public sealed class NodeConditionTests(ApiServerFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Publish = TimeSpan.FromSeconds(45);
    private const string CgroupV1 = "io.containerd.deprecation/cgroup-v1";

    private KubeCluster Cluster => fixture.Cluster;

    [KubeFact(node: false)]
    public async Task A_v2_config_with_a_deprecated_key_publishes_False_with_that_warning_and_keeps_the_other_conditions()
    {
        const string node = "nc-v2";
        await Conditions.RegisterAsync(Cluster.Api, node);
        var identity = NodeIdentity(node);
        await using var hulld = await HulldProcess.StartAsync($"""
            version = 2
            [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
              endpoint = ["https://mirror.example.com"]
            {Section(identity.Kubeconfig, node, Resync)}
            """);

        var condition = await Conditions.WaitAsync(Cluster.Api, node, c => (string?)c["status"] == "False", Publish, "False", () => hulld.Log);
        Assert.Equal("DeprecatedFeaturesInUse", (string?)condition["reason"]);
        string message = (string)condition["message"]!;
        Assert.Contains("[io.containerd.deprecation/cri-registry-mirrors] The `mirrors` property", message);
        Assert.Contains("[io.containerd.deprecation/config-version-2] Configuration version 2 is deprecated.", message);
        Conditions.AssertOthersKept(await Cluster.Api.GetAsync($"api/v1/nodes/{node}"));

        // Each resync moves lastHeartbeatTime; lastTransitionTime stays while the status does.
        var heartbeat = Conditions.Time(condition, "lastHeartbeatTime");
        var transition = Conditions.Time(condition, "lastTransitionTime");
        var later = await Conditions.WaitAsync(Cluster.Api, node, c => Conditions.Time(c, "lastHeartbeatTime") > heartbeat,
            TimeSpan.FromSeconds(20), "heartbeat again", () => hulld.Log);
        Assert.Equal(transition, Conditions.Time(later, "lastTransitionTime"));
        Assert.Equal("False", (string?)later["status"]);
        Conditions.AssertOthersKept(await Cluster.Api.GetAsync($"api/v1/nodes/{node}"));

        var events = await Conditions.WaitForEventsAsync(Cluster.Api, node, "DeprecatedFeatureInUse");
        var mirrors = Assert.Single(events, e => ((string?)e["message"])!.StartsWith("[io.containerd.deprecation/cri-registry-mirrors]"));
        Assert.Equal("Warning", (string?)mirrors["type"]);
        Assert.Equal("hull", (string?)mirrors["source"]?["component"]);

        var list = await Conditions.HullctlAsync(hulld.Socket, "deprecations", "list", "--format", "json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var published = JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray()
            .ToDictionary(w => w.GetProperty("id").GetString()!, w => w.GetProperty("publishedOnNode").GetBoolean());
        Assert.True(published["io.containerd.deprecation/cri-registry-mirrors"]);
        Assert.True(published["io.containerd.deprecation/config-version-2"]);
        var table = await Conditions.HullctlAsync(hulld.Socket, "deprecations", "list");
        Assert.Matches(@"io\.containerd\.deprecation/cri-registry-mirrors\s+\S+\s+1\s+yes\s", table.Stdout);
        var info = await Conditions.HullctlAsync(hulld.Socket, "info");
        Assert.Contains($"Node condition: False (DeprecatedFeaturesInUse) on node {node}", info.Stdout);
        Assert.Contains($"Publisher:    kubeconfig {identity.Kubeconfig}, API server {Cluster.Server}", info.Stdout);
        output.WriteLine(info.Stdout);
        output.WriteLine((await Cluster.KubectlOkAsync("get", "node", node, "-o", "yaml")));
    }

    [KubeFact(node: false)]
    public async Task A_clean_config_publishes_True_and_a_new_warning_flips_it_at_once_with_an_Event()
    {
        const string node = "nc-clean";
        await Conditions.RegisterAsync(Cluster.Api, node);
        // A long resync: what follows the first publication can only come from the new warning waking the reporter.
        // This host mounts cgroup v1 controllers, which is itself a deprecation: ignored here, in both places.
        await using var hulld = await HulldProcess.StartAsync($"""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime']
              ignore_deprecation_warnings = ['{CgroupV1}']
            {Section(NodeIdentity(node).Kubeconfig, node, TimeSpan.FromHours(1))}
            """);
        var clean = await Conditions.WaitAsync(Cluster.Api, node, c => (string?)c["status"] == "True", Publish, "True", () => hulld.Log);
        Assert.Equal("NoDeprecations", (string?)clean["reason"]);
        var criCondition = (await hulld.Cri.StatusAsync()).Status.Conditions.Single(c => c.Type == Conditions.Hull);
        Assert.True(criCondition.Status);
        Assert.Equal("NoDeprecations", criCondition.Reason);
        Assert.Empty(await Conditions.EventsAsync(Cluster.Api, node, "DeprecatedFeatureInUse"));

        await Task.Delay(1100); // the API keeps whole seconds: the transition must be visibly later
        await CallRetiredCriApiAsync(hulld.Socket);
        var flipped = await Conditions.WaitAsync(Cluster.Api, node, c => (string?)c["status"] == "False", TimeSpan.FromSeconds(20),
            "False after a CRI v1alpha2 call", () => hulld.Log);
        Assert.Contains("[io.containerd.deprecation/cri-api-v1alpha2]", (string)flipped["message"]!);
        Assert.DoesNotContain(CgroupV1, (string)flipped["message"]!);
        Assert.True(Conditions.Time(flipped, "lastTransitionTime") > Conditions.Time(clean, "lastTransitionTime"), flipped.ToJsonString());
        var announced = Assert.Single(await Conditions.WaitForEventsAsync(Cluster.Api, node, "DeprecatedFeatureInUse"));
        Assert.StartsWith("[io.containerd.deprecation/cri-api-v1alpha2] CRI API v1alpha2 is removed.", (string?)announced["message"]);
        Conditions.AssertOthersKept(await Cluster.Api.GetAsync($"api/v1/nodes/{node}"));
    }

    [KubeFact(node: false)]
    public async Task An_API_server_that_is_down_at_start_gets_the_condition_once_it_is_up()
    {
        const string node = "nc-late";
        await Conditions.RegisterAsync(Cluster.Api, node);
        var identity = NodeIdentity(node);
        await using var forwarder = new TcpForwarder(new IPEndPoint(IPAddress.Loopback, Cluster.Server.Port));
        var kubeconfig = Kubeconfig.Write(Path.Combine(Cluster.Dir, "nc-late-forwarded.kubeconfig"),
            new Uri($"https://127.0.0.1:{forwarder.Port}/"), Cluster.Pki, identity.Certificate, identity.Name);

        var started = Stopwatch.StartNew();
        await using var hulld = await HulldProcess.StartAsync($"""
            version = 3
            {Section(kubeconfig, node, TimeSpan.FromSeconds(5))}
            """);
        output.WriteLine($"hulld served CRI {started.ElapsedMilliseconds} ms after its start, with the API server unreachable");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string info;
        while (!(info = (await Conditions.HullctlAsync(hulld.Socket, "info")).Stdout).Contains("Connection refused"))
        {
            Assert.True(DateTime.UtcNow < deadline, $"hullctl info shows no connection error:\n{info}\n{hulld.Log}");
            await Task.Delay(250);
        }
        Assert.Contains($"Error:        cannot patch the status of node \"{node}\" on https://127.0.0.1:{forwarder.Port}/", info);
        Assert.Contains("retrying in", hulld.Log);
        Assert.Null(Conditions.Find(await Cluster.Api.GetAsync($"api/v1/nodes/{node}"), Conditions.Hull));
        Assert.True((await hulld.Cri.StatusAsync()).Status.Conditions.Count > 0);

        forwarder.Open();
        var condition = await Conditions.WaitAsync(Cluster.Api, node, _ => true, TimeSpan.FromSeconds(30), "published", () => hulld.Log);
        output.WriteLine($"published {condition.ToJsonString()}");
        info = (await Conditions.HullctlAsync(hulld.Socket, "info")).Stdout;
        Assert.DoesNotContain("Error:", info);
    }

    [KubeFact(node: false)]
    public async Task Without_RBAC_for_nodes_status_the_error_is_clear_in_the_log_and_hullctl_info_and_CRI_keeps_working()
    {
        const string node = "nc-rbac";
        await Conditions.RegisterAsync(Cluster.Api, node);
        var user = Cluster.AddUser("nc-rbac-user", "hull-e2e-no-node-status");
        // Everything on nodes and events, except the status subresource.
        await Cluster.ApplyAsync("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: hull-e2e-no-node-status}
            rules:
              - {apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "patch", "update"]}
              - {apiGroups: [""], resources: ["events"], verbs: ["create"]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: hull-e2e-no-node-status}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: hull-e2e-no-node-status}
            subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: hull-e2e-no-node-status}]
            """);
        await using var hulld = await HulldProcess.StartAsync($"""
            version = 3
            {Section(user.Kubeconfig, node, Resync)}
            """);

        const string forbidden = "403 Forbidden: nodes \"nc-rbac\" is forbidden: User \"hull-e2e-no-node-status\" cannot patch resource \"nodes/status\"";
        var deadline = DateTime.UtcNow + Publish;
        while (!hulld.Log.Contains(forbidden))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no RBAC error in hulld's log:\n{hulld.Log}");
            await Task.Delay(250);
        }
        string line = hulld.Log.Split('\n').First(l => l.Contains(forbidden));
        output.WriteLine(line);
        Assert.Contains($"cannot patch the status of node \"{node}\" on {Cluster.Server}", line);
        Assert.Contains("the identity needs `patch` on `nodes/status`", line);
        var info = await Conditions.HullctlAsync(hulld.Socket, "info");
        Assert.Contains("Node condition: not published yet on node nc-rbac", info.Stdout);
        Assert.Contains(forbidden, info.Stdout);

        // CRI answers at once while the reporter keeps failing.
        for (int i = 0; i < 3; i++)
        {
            var call = Stopwatch.StartNew();
            await hulld.Cri.VersionAsync();
            var status = await hulld.Cri.StatusAsync();
            await hulld.Cri.Runtime.ListPodSandboxAsync(new Hull.Api.Cri.ListPodSandboxRequest());
            Assert.True(call.Elapsed < TimeSpan.FromSeconds(2), $"CRI calls took {call.Elapsed}");
            Assert.Contains(status.Status.Conditions, c => c.Type == Conditions.Hull);
            await Task.Delay(Resync);
        }
        Assert.Null(Conditions.Find(await Cluster.Api.GetAsync($"api/v1/nodes/{node}"), Conditions.Hull));
    }

    private KubeUser NodeIdentity(string node) => Cluster.AddUser(node, $"system:node:{node}", "system:nodes");

    private static string Section(string kubeconfig, string node, TimeSpan resync) => $"""
        [plugins.'io.hull.kube.v1.node-conditions']
          enable = true
          kubeconfig = '{kubeconfig}'
          node_name = '{node}'
          resync_interval = '{(int)resync.TotalSeconds}s'
        """;

    /// <summary>A call on CRI v1alpha2, which hulld answers UNIMPLEMENTED and records as a deprecation.</summary>
    private static async Task CallRetiredCriApiAsync(string socket)
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://localhost/runtime.v1alpha2.RuntimeService/Version")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(new byte[5]),
        };
        request.Content.Headers.ContentType = new("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
    }
}
