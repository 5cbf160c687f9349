namespace Hull.Runtime.Spec;

// What the spec builder is given: plain records that mirror CRI's ContainerConfig, LinuxContainerConfig
// and the pod sandbox, without knowing a CRI message type (Hull.Cri translates). CRI's convention that a
// zero number means "not set" is kept for resources, so the translation is one assignment per field.

/// <summary>Everything needed to write one container's config.json.</summary>
public sealed record ContainerSpecRequest
{
    public required string ContainerId { get; init; }
    /// <summary>The container's root file system on the host (a mounted snapshot); /etc/passwd and /etc/group are read from here.</summary>
    public required string RootfsPath { get; init; }
    /// <summary>The image reference, for error messages and the io.kubernetes.cri.image-name annotation.</summary>
    public required string ImageName { get; init; }
    public required ContainerConfig Container { get; init; }
    public ImageConfig Image { get; init; } = new();
    public required SandboxContext Sandbox { get; init; }
    /// <summary>The pod's runtime handler: cgroup driver, privileged device policy, annotations passed through.</summary>
    public required Handlers.RuntimeHandler Handler { get; init; }
    /// <summary>The container's own state directory on the host; image volumes are created under volumes/ in it.</summary>
    public string? ContainerDirectory { get; init; }
    /// <summary>Where the container writes its termination message; null when the kubelet already passes it as a mount.</summary>
    public TerminationMessage? TerminationMessage { get; init; }
}

/// <summary>CRI's ContainerConfig plus LinuxContainerConfig.</summary>
public sealed record ContainerConfig
{
    public required string Name { get; init; }
    public uint Attempt { get; init; }
    /// <summary>Replaces the image's entrypoint when not empty (and then the image's cmd is dropped unless <see cref="Args"/> is given).</summary>
    public IReadOnlyList<string> Command { get; init; } = [];
    /// <summary>Replaces the image's cmd when not empty.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];
    public IReadOnlyList<EnvVar> Env { get; init; } = [];
    public string? WorkingDir { get; init; }
    public IReadOnlyList<ContainerMount> Mounts { get; init; } = [];
    public IReadOnlyList<ContainerDevice> Devices { get; init; } = [];
    /// <summary>CDI devices by fully qualified name (<c>vendor.com/class=name</c>), from CRI's CDI_devices.</summary>
    public IReadOnlyList<string> CdiDevices { get; init; } = [];
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public bool Tty { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }
    /// <summary>The CRI log file (relative to the pod's log directory); used by the monitor, not by the spec.</summary>
    public string? LogPath { get; init; }
    /// <summary>CRI's stop_signal ("SIGUSR1"); replaces the image's stop signal when set. Used by the monitor, not by the spec.</summary>
    public string? StopSignal { get; init; }
    public LinuxResources? Resources { get; init; }
    public ContainerSecurity Security { get; init; } = new();
}

public sealed record EnvVar(string Key, string Value);

public enum MountPropagation
{
    /// <summary>rprivate: no mount events cross in either direction.</summary>
    Private,
    /// <summary>rslave: mounts made on the host later appear in the container.</summary>
    HostToContainer,
    /// <summary>rshared: mounts propagate both ways.</summary>
    Bidirectional,
}

/// <summary>A bind mount of a host path into the container (CRI Mount), or of an image's file system (an image volume).</summary>
public sealed record ContainerMount
{
    public required string ContainerPath { get; init; }
    /// <summary>For an image volume: empty in the request; the lifecycle sets it to where it mounted the image.</summary>
    public required string HostPath { get; init; }
    /// <summary>
    /// An image volume (KEP-4639): the image (a reference or id of a pulled image) whose file system is mounted, always
    /// read-only; null for a host path mount.
    /// </summary>
    public string? Image { get; init; }
    /// <summary>For an image volume: the directory of the image (relative to its root) mounted instead of the root.</summary>
    public string? ImageSubPath { get; init; }
    public bool Readonly { get; init; }
    /// <summary>Read-only all the way down (submounts too): the "rro" option, which needs mount_setattr (Linux 5.12); Hull makes the bind itself where the OCI runtime cannot.</summary>
    public bool RecursiveReadOnly { get; init; }
    public MountPropagation Propagation { get; init; }
    /// <summary>The mount's own idmapping (CRI's uidMappings); empty means the pod's, when the pod has a user namespace.</summary>
    public IReadOnlyList<OciIdMapping> UidMappings { get; init; } = [];
    /// <summary>The mount's own gid idmapping (CRI's gidMappings); empty means the pod's.</summary>
    public IReadOnlyList<OciIdMapping> GidMappings { get; init; } = [];
    /// <summary>Accepted and ignored: Hull does not do SELinux labelling yet.</summary>
    public bool SelinuxRelabel { get; init; }
}

/// <summary>A host device node made available in the container; permissions are a combination of r, w, m.</summary>
public sealed record ContainerDevice(string ContainerPath, string HostPath, string Permissions = "rwm");

/// <summary>CRI LinuxContainerResources; 0 (or empty) means "not set", as in CRI.</summary>
public sealed record LinuxResources
{
    public long CpuPeriod { get; init; }
    public long CpuQuota { get; init; }
    public long CpuShares { get; init; }
    public long MemoryLimitInBytes { get; init; }
    /// <summary>Memory plus swap (CRI's memory_swap_limit_in_bytes, which is what the kubelet computes as limit + swap).</summary>
    public long MemorySwapLimitInBytes { get; init; }
    public long OomScoreAdj { get; init; }
    public string? CpusetCpus { get; init; }
    public string? CpusetMems { get; init; }
    public IReadOnlyList<HugepageLimit> HugepageLimits { get; init; } = [];
    public IReadOnlyDictionary<string, string> Unified { get; init; } = new Dictionary<string, string>();
}

/// <summary>A hugetlb limit; <see cref="PageSize"/> is the cgroup's spelling ("2MB", "1GB").</summary>
public sealed record HugepageLimit(string PageSize, ulong Limit);

public enum SupplementalGroupsPolicy
{
    /// <summary>The groups the image's /etc/group gives the user, plus the pod's supplemental groups.</summary>
    Merge,
    /// <summary>Only the pod's supplemental groups (and the primary group).</summary>
    Strict,
}

public enum SecurityProfileKind
{
    RuntimeDefault,
    Unconfined,
    /// <summary>A profile the node has: a seccomp JSON file (absolute path) or a loaded AppArmor profile (its name).</summary>
    Localhost,
}

/// <summary>A seccomp or AppArmor profile choice (CRI SecurityProfile).</summary>
public sealed record SecurityProfile(SecurityProfileKind Kind, string? LocalhostRef = null)
{
    public static SecurityProfile RuntimeDefault { get; } = new(SecurityProfileKind.RuntimeDefault);
    public static SecurityProfile Unconfined { get; } = new(SecurityProfileKind.Unconfined);
    public static SecurityProfile Localhost(string reference) => new(SecurityProfileKind.Localhost, reference);
}

/// <summary>Capability names without the CAP_ prefix, as CRI sends them ("NET_ADMIN"); "ALL" means every capability.</summary>
public sealed record CapabilityChanges
{
    public IReadOnlyList<string> Add { get; init; } = [];
    public IReadOnlyList<string> Drop { get; init; } = [];
}

public enum PidNamespaceMode
{
    /// <summary>A PID namespace of the container's own.</summary>
    Container,
    /// <summary>The pod's shared PID namespace (the infra process's).</summary>
    Pod,
    /// <summary>The host's PID namespace.</summary>
    Node,
    /// <summary>Another container's PID namespace (ephemeral debug containers).</summary>
    Target,
}

/// <summary>CRI LinuxContainerSecurityContext.</summary>
public sealed record ContainerSecurity
{
    public bool Privileged { get; init; }
    public long? RunAsUser { get; init; }
    public string? RunAsUsername { get; init; }
    public long? RunAsGroup { get; init; }
    public IReadOnlyList<long> SupplementalGroups { get; init; } = [];
    public SupplementalGroupsPolicy SupplementalGroupsPolicy { get; init; }
    public bool ReadonlyRootfs { get; init; }
    public bool NoNewPrivs { get; init; }
    public CapabilityChanges? Capabilities { get; init; }
    /// <summary>Null: the builder's configured default (Unconfined, as in containerd, unless configured otherwise).</summary>
    public SecurityProfile? Seccomp { get; init; }
    /// <summary>Null: RuntimeDefault where the host has AppArmor.</summary>
    public SecurityProfile? AppArmor { get; init; }
    /// <summary>Null: Hull's defaults (containerd's lists); an empty list: nothing masked.</summary>
    public IReadOnlyList<string>? MaskedPaths { get; init; }
    /// <summary>Null: Hull's defaults (containerd's lists); an empty list: nothing read-only.</summary>
    public IReadOnlyList<string>? ReadonlyPaths { get; init; }
    public PidNamespaceMode PidMode { get; init; } = PidNamespaceMode.Pod;
    /// <summary>The PID namespace path to join when <see cref="PidMode"/> is <see cref="PidNamespaceMode.Target"/>.</summary>
    public string? TargetPidNamespacePath { get; init; }
    /// <summary>CRI's userns_options for the container; it must be the pod's (null means the host's, as for the pod).</summary>
    public UserNamespaceOptions? UserNamespace { get; init; }
}

/// <summary>The parts of an OCI image config that shape a container (config.Entrypoint, Cmd, Env, ...).</summary>
public sealed record ImageConfig
{
    public IReadOnlyList<string> Entrypoint { get; init; } = [];
    public IReadOnlyList<string> Cmd { get; init; } = [];
    /// <summary>"KEY=value" entries.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    public string? WorkingDir { get; init; }
    /// <summary>"user", "uid", "user:group", "uid:gid", ... as in the image spec.</summary>
    public string? User { get; init; }
    public string? StopSignal { get; init; }
    /// <summary>Anonymous volume paths (the keys of config.Volumes).</summary>
    public IReadOnlyList<string> Volumes { get; init; } = [];
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

public enum NamespaceKind
{
    /// <summary>A new namespace for the container.</summary>
    New,
    /// <summary>The host's namespace: no namespace entry in the spec.</summary>
    Host,
    /// <summary>Join the namespace at <see cref="NamespaceRef.Path"/> (a pinned bind mount or /proc/PID/ns/X).</summary>
    Path,
}

/// <summary>Which namespace of one type a container gets.</summary>
public sealed record NamespaceRef(NamespaceKind Kind, string? Path = null)
{
    public static NamespaceRef New { get; } = new(NamespaceKind.New);
    public static NamespaceRef Host { get; } = new(NamespaceKind.Host);
    public static NamespaceRef At(string path) => new(NamespaceKind.Path, path);
}

/// <summary>
/// A pod user namespace: joined by path when it is pinned, with the pod's ID mappings (which runc needs even when it joins
/// by path, and which every bind of the pod is idmapped with unless it has its own).
/// </summary>
public sealed record UserNamespace
{
    public string? Path { get; init; }
    public IReadOnlyList<OciIdMapping> UidMappings { get; init; } = [];
    public IReadOnlyList<OciIdMapping> GidMappings { get; init; } = [];
}

/// <summary>What the pod sandbox contributes to each of its containers.</summary>
public sealed record SandboxContext
{
    public required string SandboxId { get; init; }
    public string PodName { get; init; } = "";
    public string PodNamespace { get; init; } = "";
    public string PodUid { get; init; } = "";
    public string Hostname { get; init; } = "";
    public NamespaceRef Network { get; init; } = NamespaceRef.New;
    public NamespaceRef Ipc { get; init; } = NamespaceRef.New;
    public NamespaceRef Uts { get; init; } = NamespaceRef.New;
    /// <summary>The infra process's PID namespace (/proc/PID/ns/pid) when the pod shares one.</summary>
    public string? SharedPidNamespacePath { get; init; }
    public UserNamespace? UserNamespace { get; init; }
    /// <summary>The pod's cgroup parent from the kubelet: "/kubepods/burstable/pod…" (cgroupfs) or "kubepods-burstable-pod….slice" (systemd).</summary>
    public string? CgroupParent { get; init; }
    /// <summary>The pod's annotations (those the handler's <c>pod_annotations</c> match reach the container's spec).</summary>
    public IReadOnlyDictionary<string, string> PodAnnotations { get; init; } = new Dictionary<string, string>();
    public bool Privileged { get; init; }
    public string? HostsPath { get; init; }
    public string? ResolvConfPath { get; init; }
    public string? HostnamePath { get; init; }
    /// <summary>The pod's /dev/shm on the host; ignored for host-IPC pods, which get the host's /dev/shm.</summary>
    public string? ShmPath { get; init; }
    /// <summary>Pod sysctls (validated against the pod's namespaces, then set in every container).</summary>
    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
}

/// <summary>The termination message file: <see cref="HostPath"/> is bind-mounted read-write at <see cref="ContainerPath"/>.</summary>
public sealed record TerminationMessage(string HostPath, string ContainerPath = TerminationMessage.DefaultContainerPath)
{
    public const string DefaultContainerPath = "/dev/termination-log";
}

public enum CgroupDriver
{
    /// <summary>cgroupsPath is a path: "&lt;parent&gt;/&lt;container id&gt;".</summary>
    Cgroupfs,
    /// <summary>cgroupsPath is "slice:prefix:name" for runc's systemd driver.</summary>
    Systemd,
}

public enum ImageVolumeMode
{
    /// <summary>An empty directory per volume (containerd's default).</summary>
    Mkdir,
    /// <summary>The directory is seeded with what the image has at that path (Docker's behaviour).</summary>
    Copy,
    /// <summary>Image volumes are not mounted; writes go to the container's rootfs.</summary>
    Ignore,
}
