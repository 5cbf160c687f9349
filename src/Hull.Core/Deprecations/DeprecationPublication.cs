namespace Hull.Core.Deprecations;

/// <summary>
/// What the node-condition reporter (Hull.Kube) has published of the deprecation condition on the Kubernetes Node, for
/// the admin API (<c>hullctl info</c>, <c>hullctl deprecations list</c>): it lives here so that the admin service need
/// not know Kubernetes.
/// </summary>
public interface IDeprecationPublisher
{
    DeprecationPublication Status { get; }
}

/// <summary>The reporter's state.</summary>
/// <param name="Mode">How it runs, in words (e.g. "kubeconfig /etc/kubernetes/kubelet.conf", "in-cluster").</param>
/// <param name="Node">The Node it publishes on; empty while it cannot tell.</param>
/// <param name="Server">The API server.</param>
/// <param name="Published">The condition as last accepted by the API server; null before the first success.</param>
/// <param name="PublishedAt">When that was.</param>
/// <param name="Error">Why the last attempt failed; null once an attempt succeeds.</param>
/// <param name="ErrorAt">When it failed.</param>
public sealed record DeprecationPublication(string Mode, string Node, string Server, DeprecationConditionState? Published,
    DateTimeOffset? PublishedAt, string? Error, DateTimeOffset? ErrorAt)
{
    /// <summary>Whether the warning with this ID is part of the condition last published.</summary>
    public bool IsPublished(string id) => Published?.Ids.Contains(id, StringComparer.Ordinal) == true;
}
