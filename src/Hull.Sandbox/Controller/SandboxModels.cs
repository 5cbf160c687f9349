using System.Net;
using Hull.Runtime.Spec;

namespace Hull.Sandbox.Controller;

/// <summary>Who the pod is, in the kubelet's words; the name reservation key is (Name, Namespace, Uid, Attempt).</summary>
public sealed record PodIdentity(string Name, string Namespace, string Uid, uint Attempt)
{
    public string ReservationKey => $"{Name}_{Namespace}_{Uid}_{Attempt}";
}

public enum NamespaceMode { Pod, Container, Node, Target }

/// <summary>A pod sandbox as the CRI layer asks for it, free of CRI message types.</summary>
public sealed record PodSandboxSpec
{
    public required string Id { get; init; }
    public required PodIdentity Identity { get; init; }
    public required string RuntimeHandler { get; init; }
    public string Hostname { get; init; } = "";
    public string LogDirectory { get; init; } = "";
    public PodDns? Dns { get; init; }
    public IReadOnlyList<PodPortMapping> PortMappings { get; init; } = [];
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public string CgroupParent { get; init; } = "";
    public NamespaceMode NetworkMode { get; init; } = NamespaceMode.Pod;
    public NamespaceMode PidMode { get; init; } = NamespaceMode.Container;
    public NamespaceMode IpcMode { get; init; } = NamespaceMode.Pod;
    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
    public SandboxResources? Resources { get; init; }
    public bool Privileged { get; init; }
    public long? RunAsUser { get; init; }
    public IReadOnlyList<long> SupplementalGroups { get; init; } = [];
    /// <summary>The pod's user namespace (CRI userns_options): the host's, or one of its own with the kubelet's mappings.</summary>
    public UserNamespaceOptions UserNamespace { get; init; } = UserNamespaceOptions.Node;
}

public sealed record PodDns(IReadOnlyList<string> Servers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options);

public sealed record PodPortMapping(string Protocol, int ContainerPort, int HostPort, string HostIp);

public sealed record SandboxResources(long? CpuShares = null, long? CpuQuota = null, long? CpuPeriod = null, long? MemoryLimitBytes = null);

/// <summary>A created or started sandbox: what containers joining it need.</summary>
public sealed record SandboxInstance
{
    public required string Id { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public SandboxState State { get; init; } = SandboxState.NotReady;
    /// <summary>Namespace paths containers join ("" when the pod uses the host's).</summary>
    public string NetNsPath { get; init; } = "";
    public string IpcNsPath { get; init; } = "";
    public string UtsNsPath { get; init; } = "";
    /// <summary>The infra process's pid namespace when containers share one, else "".</summary>
    public string PidNsPath { get; init; } = "";
    /// <summary>The pod's pinned user namespace ("" when it uses the host's), which every container and the infra process join.</summary>
    public string UserNsPath { get; init; } = "";
    public int InfraPid { get; init; }
    /// <summary>The infra process's start time (/proc, clock ticks) when Hull started it without runc, else 0; with <see cref="InfraPid"/> it names that very process.</summary>
    public ulong InfraStartTime { get; init; }
    public string CgroupParent { get; init; } = "";
    public string HostnamePath { get; init; } = "";
    public string HostsPath { get; init; } = "";
    public string ResolvConfPath { get; init; } = "";
    public string ShmPath { get; init; } = "";
    public IReadOnlyList<IPAddress> Ips { get; init; } = [];
    /// <summary>The sandboxer that made this sandbox (the handler's <c>sandboxer</c>).</summary>
    public string Sandboxer { get; init; } = "";
    /// <summary>The sandbox's own directory (hostname, hosts, resolv.conf, shm), under the state directory.</summary>
    public string Directory { get; init; } = "";
    /// <summary>The infra process's task id in the task endpoint ("" when the pod has none).</summary>
    public string InfraTaskId { get; init; } = "";
    /// <summary>The pause image the infra process runs from (its rootfs is a snapshot of it); "" for catatonit or no infra process.</summary>
    public string InfraImage { get; init; } = "";
    /// <summary>Hull created the pod cgroup (<see cref="CgroupParent"/>) and removes it with the sandbox.</summary>
    public bool CgroupCreated { get; init; }
    /// <summary>CNI ADD succeeded and no DEL has succeeded since: stop (or remove, after a failed stop) runs DEL.</summary>
    public bool NetworkAttached { get; init; }
    /// <summary>The per-pod tmpfs is mounted at <see cref="ShmPath"/>.</summary>
    public bool ShmMounted { get; init; }
}

public sealed record SandboxStatus(SandboxInstance Instance, DateTimeOffset? ExitedAt, IReadOnlyDictionary<string, string> Info);

public sealed record SandboxMetrics(DateTimeOffset Timestamp, ulong CpuUsageNanos, ulong MemoryWorkingSetBytes,
    IReadOnlyList<InterfaceMetrics> Interfaces);

public sealed record InterfaceMetrics(string Name, ulong RxBytes, ulong RxErrors, ulong TxBytes, ulong TxErrors);
