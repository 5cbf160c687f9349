namespace Hull.Kube;

/// <summary>The node-condition reporter's settings (<c>[plugins.'io.hull.kube.v1.node-conditions']</c>, bound by hulld).</summary>
public sealed record NodeConditionsOptions
{
    public required bool Enable { get; init; }
    /// <summary>kubeconfig file; empty means in-cluster credentials.</summary>
    public required string Kubeconfig { get; init; }
    /// <summary>The Node's name; empty means <c>NODE_NAME</c>, then the host name.</summary>
    public required string NodeName { get; init; }
    public required TimeSpan ResyncInterval { get; init; }
    /// <summary>Deprecation IDs that do not count (<c>ignore_deprecation_warnings</c>, shared with CRI Status).</summary>
    public required IReadOnlyList<string> IgnoredDeprecations { get; init; }

    /// <summary>Where the condition is published from, for these settings in a process with this environment.</summary>
    public ReporterPlacement Placement(KubeEnvironment environment) =>
        !Enable ? ReporterPlacement.Disabled
        : Kubeconfig.Length > 0 || environment.InCluster ? ReporterPlacement.ThisProcess
        : ReporterPlacement.DaemonSetPod;
}

/// <summary>Which process publishes the condition.</summary>
public enum ReporterPlacement
{
    /// <summary><c>enable = false</c>.</summary>
    Disabled,
    /// <summary>hulld itself: it has a kubeconfig, or runs in a pod.</summary>
    ThisProcess,
    /// <summary>
    /// <c>hulld node-conditions</c> in the DaemonSet's pod: hulld runs outside a pod with no kubeconfig, so the only
    /// credentials on the node are the pod's service account's.
    /// </summary>
    DaemonSetPod,
}
