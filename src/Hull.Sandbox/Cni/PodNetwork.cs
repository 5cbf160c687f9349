using System.Net;
using System.Text.Json.Nodes;

namespace Hull.Sandbox.Cni;

/// <summary>
/// One pod sandbox's network attachment request: the CNI container id (the sandbox id), its pinned network
/// namespace, the Kubernetes identity that goes into <c>CNI_ARGS</c>, and the capability arguments that go into
/// each plugin's <c>runtimeConfig</c> when the plugin declares the capability.
/// </summary>
public sealed record PodNetworkRequest(string SandboxId, string NetNsPath)
{
    public string PodName { get; init; } = "";
    public string PodNamespace { get; init; } = "";
    public string PodUid { get; init; } = "";
    /// <summary>Capability <c>portMappings</c>; only mappings with a host port are passed, like containerd.</summary>
    public IReadOnlyList<CniPortMapping> PortMappings { get; init; } = [];
    /// <summary>Capability <c>bandwidth</c>.</summary>
    public CniBandwidth? Bandwidth { get; init; }
    /// <summary>Capability <c>dns</c>.</summary>
    public CniDnsCapability? Dns { get; init; }
    /// <summary>Capability <c>cgroupPath</c>: the pod's cgroup parent.</summary>
    public string? CgroupPath { get; init; }
    /// <summary>Capability <c>io.kubernetes.cri.pod-annotations</c>.</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    /// <summary>Other capability arguments (<c>ips</c>, <c>mac</c>, <c>infinibandGUID</c>, …) passed as given.</summary>
    public IReadOnlyDictionary<string, JsonNode?> ExtraCapabilityArgs { get; init; } = new Dictionary<string, JsonNode?>();
}

/// <summary>A <c>portMappings</c> entry: protocol is lower case <c>tcp</c>, <c>udp</c> or <c>sctp</c>; an empty host IP means all.</summary>
public sealed record CniPortMapping(int HostPort, int ContainerPort, string Protocol = "tcp", string HostIp = "");

/// <summary>The <c>bandwidth</c> capability: rates in bits per second, bursts in bits (the bandwidth plugin's units).</summary>
public sealed record CniBandwidth(long IngressRate, long IngressBurst, long EgressRate, long EgressBurst);

/// <summary>The <c>dns</c> capability.</summary>
public sealed record CniDnsCapability(IReadOnlyList<string> Servers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options);

/// <summary>One network attached to a pod: the network's name, the interface in the pod and the final plugin result.</summary>
public sealed record CniAttachment(string NetworkName, string InterfaceName, CniResult Result);

/// <summary>What <see cref="CniManager.SetupAsync"/> produced: the pod IPs (primary first) and every attachment, loopback included.</summary>
public sealed record PodNetworkStatus(IReadOnlyList<IPAddress> PodIps, IReadOnlyList<CniAttachment> Attachments)
{
    public IPAddress? PrimaryIp => PodIps.Count > 0 ? PodIps[0] : null;
}

/// <summary>The CRI <c>NetworkReady</c> condition.</summary>
public sealed record CniStatus(bool NetworkReady, string Reason, string Message)
{
    /// <summary>containerd's reason string for a node without a usable CNI config.</summary>
    public const string NotReadyReason = "NetworkPluginNotReady";
}
