using Hull.E2E.Fixtures;

namespace Hull.Node.E2E.Cluster;

/// <summary>
/// Where the Kubernetes binaries and etcd are: ../shared/tools/install.sh unpacks kube-apiserver, kubelet, kubectl,
/// kube-scheduler and kube-controller-manager v1.26.0-rc.1 into /usr/local/lib/hull-test-tools/k8s/, and
/// hack/install-deps.sh unpacks Debian's etcd-server (apt-get download + dpkg -x, so no system service starts) into
/// /usr/local/lib/hull-test-tools/etcd/. HULL_KUBE_BIN and HULL_ETCD point elsewhere.
/// </summary>
public static class KubeTools
{
    public const string Version = "v1.26.0-rc.1";

    public static string BinDir { get; } = Environment.GetEnvironmentVariable("HULL_KUBE_BIN") is { Length: > 0 } dir
        ? dir
        : $"/usr/local/lib/hull-test-tools/k8s/{Version}";

    public static string Etcd { get; } = Environment.GetEnvironmentVariable("HULL_ETCD") is { Length: > 0 } etcd
        ? etcd
        : "/usr/local/lib/hull-test-tools/etcd/usr/bin/etcd";

    public static string ApiServer => Path.Combine(BinDir, "kube-apiserver");
    public static string Kubelet => Path.Combine(BinDir, "kubelet");
    public static string Kubectl => Path.Combine(BinDir, "kubectl");
    public static string Scheduler => Path.Combine(BinDir, "kube-scheduler");
    public static string ControllerManager => Path.Combine(BinDir, "kube-controller-manager");

    /// <summary>What a <see cref="KubeCluster"/> needs.</summary>
    public static string[] ClusterTools => [Etcd, ApiServer, Kubectl, Scheduler, ControllerManager];

    /// <summary>What a cluster with a node on Hull needs: the kubelet, the runtime's binaries, the test registry and images.</summary>
    public static string[] NodeTools => [.. ClusterTools, Kubelet, "runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
        "/usr/lib/cni/loopback", "ip", "iptables-save", "script", .. Hull.E2E.Fixtures.TestImages.RequiredTools];
}

/// <summary>
/// An end-to-end test against a real API server (and, with <paramref name="node"/>, a real kubelet on Hull): skipped
/// with the reason when a binary is missing, failed instead under CI (HULL_E2E_REQUIRED=1), like <see cref="E2EFactAttribute"/>.
/// </summary>
public sealed class KubeFactAttribute : FactAttribute
{
    public KubeFactAttribute(bool node = true)
    {
        if (Prerequisites.Missing(node ? KubeTools.NodeTools : KubeTools.ClusterTools) is { } reason && !Prerequisites.Required)
            Skip = reason;
    }
}
