namespace Hull.Kube;

/// <summary>
/// What the process's environment says about Kubernetes: the in-cluster service-account files and variables a pod gets
/// (KUBERNETES_SERVICE_HOST/PORT, /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}) and the node name the
/// DaemonSet passes from the downward API (NODE_NAME).
/// </summary>
public sealed record KubeEnvironment(string? ServiceHost, string? ServicePort, string ServiceAccountDir, string? NodeName, string HostName)
{
    public const string DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

    public static KubeEnvironment Current { get; } = new(
        Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"),
        Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_PORT"),
        DefaultServiceAccountDir,
        Environment.GetEnvironmentVariable("NODE_NAME"),
        Environment.MachineName);

    public string TokenPath => Path.Combine(ServiceAccountDir, "token");
    public string CaPath => Path.Combine(ServiceAccountDir, "ca.crt");

    /// <summary>Whether in-cluster credentials are there; <see cref="InClusterProblem"/> says what is missing when not.</summary>
    public bool InCluster => InClusterProblem is null;

    public string? InClusterProblem =>
        string.IsNullOrWhiteSpace(ServiceHost) || string.IsNullOrWhiteSpace(ServicePort)
            ? "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod)"
        : !File.Exists(TokenPath) ? $"no service account token at {TokenPath} (automountServiceAccountToken: false?)"
        : !File.Exists(CaPath) ? $"no cluster CA at {CaPath}"
        : null;

    /// <summary>
    /// The Node's name: the configured one, else NODE_NAME, else the host name in lower case (what the kubelet registers
    /// without --hostname-override).
    /// </summary>
    public string ResolveNodeName(string configured) =>
        configured.Length > 0 ? configured
        : !string.IsNullOrWhiteSpace(NodeName) ? NodeName.Trim()
        : HostName.Trim().ToLowerInvariant();
}
