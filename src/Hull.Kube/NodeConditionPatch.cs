using System.Globalization;
using System.Text.Json.Nodes;
using Hull.Core.Deprecations;

namespace Hull.Kube;

/// <summary>
/// The body of the PATCH of <c>nodes/NAME/status</c>: a strategic merge patch whose only list entry is Hull's
/// condition. Node conditions merge by their <c>type</c>, so the API server replaces that one entry and keeps every
/// other (the kubelet's, anyone's) as it is; nothing is read first, which is why a node identity, which may patch but
/// not get <c>nodes/status</c>, can send it.
/// </summary>
public static class NodeConditionPatch
{
    public const string ContentType = "application/strategic-merge-patch+json";

    /// <param name="heartbeat">Now: the time of this resync.</param>
    /// <param name="transition">When the status last changed (as far as this reporter knows).</param>
    public static JsonObject Build(DeprecationConditionState state, DateTimeOffset heartbeat, DateTimeOffset transition) => new()
    {
        ["status"] = new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject
            {
                ["type"] = DeprecationCondition.Type,
                ["status"] = state.NoDeprecations ? "True" : "False",
                ["reason"] = state.Reason,
                ["message"] = state.Message,
                ["lastHeartbeatTime"] = Time(heartbeat),
                ["lastTransitionTime"] = Time(transition),
            }),
        },
    };

    /// <summary>RFC 3339 in UTC with whole seconds, as the API stores <c>metav1.Time</c>.</summary>
    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
