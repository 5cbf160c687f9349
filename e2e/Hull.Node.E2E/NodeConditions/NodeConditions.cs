using System.Text.Json.Nodes;
using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.NodeConditions;

/// <summary>Reading and setting Node conditions the way the tests need them.</summary>
public static class Conditions
{
    /// <summary>The condition Hull publishes (Hull.Core's DeprecationCondition.Type).</summary>
    public const string Hull = "ContainerRuntimeHasNoDeprecations";

    public static JsonNode? Find(JsonNode? node, string type) =>
        node?["status"]?["conditions"]?.AsArray().FirstOrDefault(c => (string?)c?["type"] == type);

    public static DateTime Time(JsonNode condition, string field) => DateTime.Parse((string)condition[field]!).ToUniversalTime();

    /// <summary>Polls the Node until Hull's condition satisfies <paramref name="done"/>; fails with the Node's conditions and <paramref name="log"/>.</summary>
    public static async Task<JsonNode> WaitAsync(KubeApi api, string node, Func<JsonNode, bool> done, TimeSpan timeout, string what,
        Func<string>? log = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonNode? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await api.GetAsync($"api/v1/nodes/{node}");
            if (Find(last, Hull) is { } condition && done(condition)) return condition;
            await Task.Delay(250);
        }
        throw new TimeoutException($"node {node}: {Hull} not {what} within {timeout}; conditions: " +
            $"{last?["status"]?["conditions"]?.ToJsonString()}\n{log?.Invoke()}");
    }

    /// <summary>
    /// Registers a Node as the admin, with conditions standing for the kubelet's (Ready, MemoryPressure) and one of the
    /// test's own, so a test can check that Hull's patch leaves them alone.
    /// </summary>
    public static async Task RegisterAsync(KubeApi admin, string node)
    {
        await admin.SendAsync(HttpMethod.Post, "api/v1/nodes", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = node },
        });
        await admin.SendAsync(HttpMethod.Patch, $"api/v1/nodes/{node}/status", new JsonObject
        {
            ["status"] = new JsonObject
            {
                ["conditions"] = new JsonArray(OtherConditions.Select(c => (JsonNode)Condition(c.Type, c.Status, c.Reason)).ToArray()),
            },
        }, "application/strategic-merge-patch+json");
    }

    /// <summary>What <see cref="RegisterAsync"/> puts on the Node besides Hull's.</summary>
    public static readonly (string Type, string Status, string Reason)[] OtherConditions =
    [
        ("Ready", "True", "KubeletReady"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("HullE2ETestOwned", "True", "SetByTheTest"),
    ];

    /// <summary>Fails unless the Node still has <see cref="OtherConditions"/> as registered.</summary>
    public static void AssertOthersKept(JsonNode? node)
    {
        foreach (var (type, status, reason) in OtherConditions)
        {
            var condition = Find(node, type);
            Assert.True(condition is not null, $"condition {type} is gone: {node?["status"]?["conditions"]?.ToJsonString()}");
            Assert.Equal((status, reason), ((string?)condition["status"], (string?)condition["reason"]));
        }
    }

    private static JsonObject Condition(string type, string status, string reason)
    {
        var at = DateTime.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ssZ");
        return new JsonObject
        {
            ["type"] = type, ["status"] = status, ["reason"] = reason, ["message"] = "registered by the test",
            ["lastHeartbeatTime"] = at, ["lastTransitionTime"] = at,
        };
    }

    /// <summary>The Events about a Node with this reason (Hull's: DeprecatedFeatureInUse).</summary>
    public static async Task<List<JsonNode>> EventsAsync(KubeApi api, string node, string reason) =>
        (await api.ListAsync($"api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3DNode,involvedObject.name%3D{node}"))
            .Where(e => (string?)e["reason"] == reason).ToList();

    /// <summary>
    /// The Events about a Node with this reason once at least <paramref name="atLeast"/> are there (or 15 s passed): the
    /// reporter posts an Event after the status patch that announces it, so a test that saw the status must wait for it.
    /// </summary>
    public static async Task<List<JsonNode>> WaitForEventsAsync(KubeApi api, string node, string reason, int atLeast = 1)
    {
        var until = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var events = await EventsAsync(api, node, reason);
            if (events.Count >= atLeast || DateTime.UtcNow > until) return events;
            await Task.Delay(200);
        }
    }

    /// <summary>hullctl (the repository's build) against a hulld socket.</summary>
    public static Task<ProcessResult> HullctlAsync(string socket, params string[] args) =>
        ProcessRunner.DotnetAsync(Repo.HullctlDll, args.Prepend(socket).Prepend("--address"));
}
