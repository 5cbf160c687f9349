namespace Hull.Config;

/// <summary>
/// The effective configuration, in containerd's version 3 layout and names. Defaults equal
/// containerd 2.x's where the feature is the same; the initializers below (and <see cref="Defaults"/>
/// for shared constants) are their one home. Which TOML key feeds which property, with its type and
/// description, is declared once in <see cref="Schema.ConfigSchema"/>.
/// </summary>
public sealed record HullConfig
{
    /// <summary>Always 3 once loaded: versions 1 and 2 are migrated in memory.</summary>
    public int Version { get; init; } = Defaults.ConfigVersion;
    public string Root { get; init; } = Defaults.Root;
    public string State { get; init; } = Defaults.State;
    /// <summary>Hull-only: unknown keys are fatal instead of warnings.</summary>
    public bool Strict { get; init; }
    public GrpcConfig Grpc { get; init; } = new();
    public DebugConfig Debug { get; init; } = new();
    public MetricsConfig Metrics { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.cri.v1.runtime']</c>.</summary>
    public CriRuntimeConfig Runtime { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.cri.v1.images']</c>.</summary>
    public CriImagesConfig Images { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.grpc.v1.cri']</c>.</summary>
    public CriServerConfig Server { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.nri.v1.nri']</c>.</summary>
    public NriConfig Nri { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.transfer.v1.local']</c>.</summary>
    public TransferConfig Transfer { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.image-verifier.v1.bindir']</c>.</summary>
    public ImageVerifierConfig ImageVerifier { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.snapshotter.v1.overlayfs']</c>.</summary>
    public OverlayfsConfig Overlayfs { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.tracing.processor.v1.otlp']</c> (deprecated in containerd 2.x).</summary>
    public OtlpConfig Otlp { get; init; } = new();
    /// <summary><c>[plugins.'io.containerd.internal.v1.tracing']</c> (deprecated in containerd 2.x).</summary>
    public TracingConfig Tracing { get; init; } = new();
    /// <summary><c>[plugins.'io.hull.kube.v1.node-conditions']</c> (Hull only).</summary>
    public NodeConditionsConfig NodeConditions { get; init; } = new();
}

/// <summary><c>[plugins.'io.containerd.tracing.processor.v1.otlp']</c>: where spans go; the OTEL_EXPORTER_OTLP_* variables win.</summary>
public sealed record OtlpConfig
{
    public string Endpoint { get; init; } = "";
    public string Protocol { get; init; } = "";
    public bool Insecure { get; init; }
}

/// <summary><c>[plugins.'io.containerd.internal.v1.tracing']</c>: sampling and service name; OTEL_SERVICE_NAME and OTEL_TRACES_SAMPLER* win.</summary>
public sealed record TracingConfig
{
    public string ServiceName { get; init; } = "";
    public double SamplingRatio { get; init; }
}

/// <summary><c>[grpc]</c>: the CRI (and admin) socket.</summary>
public sealed record GrpcConfig
{
    public string Address { get; init; } = Defaults.Address;
    public int Uid { get; init; }
    public int Gid { get; init; }
    public int MaxRecvMessageSize { get; init; } = Defaults.MaxMessageSize;
    public int MaxSendMessageSize { get; init; } = Defaults.MaxMessageSize;
}

/// <summary><c>[debug]</c>.</summary>
public sealed record DebugConfig
{
    /// <summary>Debug socket; empty means none.</summary>
    public string Address { get; init; } = "";
    public int Uid { get; init; }
    public int Gid { get; init; }
    public string Level { get; init; } = "info";
    /// <summary><c>text</c> or <c>json</c>; empty means text.</summary>
    public string Format { get; init; } = "";
}

/// <summary><c>[metrics]</c>.</summary>
public sealed record MetricsConfig
{
    /// <summary>Prometheus endpoint (host:port); empty means none.</summary>
    public string Address { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.cri.v1.runtime']</c>.</summary>
public sealed record CriRuntimeConfig
{
    public string DefaultRuntimeName { get; init; } = Defaults.RuntimeName;
    public IReadOnlyDictionary<string, RuntimeHandlerConfig> Runtimes { get; init; } =
        new Dictionary<string, RuntimeHandlerConfig>(StringComparer.Ordinal) { [Defaults.RuntimeName] = new() };
    public CniConfig Cni { get; init; } = new();
    public bool EnableSelinux { get; init; }
    public int SelinuxCategoryRange { get; init; } = 1024;
    public int MaxContainerLogLineSize { get; init; } = 16 * 1024;
    public bool DisableApparmor { get; init; }
    public bool RestrictOomScoreAdj { get; init; }
    public bool DisableProcMount { get; init; }
    public string UnsetSeccompProfile { get; init; } = "";
    public bool TolerateMissingHugetlbController { get; init; } = true;
    public bool DisableHugetlbController { get; init; } = true;
    public bool DeviceOwnershipFromSecurityContext { get; init; }
    public bool IgnoreImageDefinedVolumes { get; init; }
    public bool EnableUnprivilegedPorts { get; init; } = true;
    public bool EnableUnprivilegedIcmp { get; init; } = true;
    public bool EnableCdi { get; init; } = true;
    public IReadOnlyList<string> CdiSpecDirs { get; init; } = ["/etc/cdi", "/var/run/cdi"];
    /// <summary>Zero means no timeout.</summary>
    public TimeSpan DrainExecSyncIoTimeout { get; init; } = TimeSpan.Zero;
    public IReadOnlyList<string> IgnoreDeprecationWarnings { get; init; } = [];
}

/// <summary><c>containerd.runtimes.&lt;name&gt;</c>: one runtime handler.</summary>
public sealed record RuntimeHandlerConfig
{
    public string RuntimeType { get; init; } = Defaults.RuntimeType;
    public string RuntimePath { get; init; } = "";
    public string Sandboxer { get; init; } = Defaults.Sandboxer;
    /// <summary>Snapshotter for this handler; empty means the images plugin's <c>snapshotter</c>.</summary>
    public string Snapshotter { get; init; } = "";
    public IReadOnlyList<string> PodAnnotations { get; init; } = [];
    public IReadOnlyList<string> ContainerAnnotations { get; init; } = [];
    public bool PrivilegedWithoutHostDevices { get; init; }
    public bool PrivilegedWithoutHostDevicesAllDevicesAllowed { get; init; }
    public string BaseRuntimeSpec { get; init; } = "";
    /// <summary>CNI config directory for this handler; empty means <c>cni.conf_dir</c>.</summary>
    public string CniConfDir { get; init; } = "";
    /// <summary>Zero means <c>cni.max_conf_num</c>.</summary>
    public int CniMaxConfNum { get; init; }
    /// <summary><c>options.BinaryName</c>: the OCI runtime binary; empty means <c>runc</c> on PATH.</summary>
    public string BinaryName { get; init; } = "";
    /// <summary><c>options.Root</c>: the OCI runtime's state directory; empty means its default.</summary>
    public string Root { get; init; } = "";
    /// <summary><c>options.SystemdCgroup</c>.</summary>
    public bool SystemdCgroup { get; init; }
    /// <summary>Read only when <see cref="Sandboxer"/> is <c>microvm</c>.</summary>
    public MicroVmConfig MicroVm { get; init; } = new();
}

/// <summary><c>containerd.runtimes.&lt;name&gt;.microvm</c>: the VMs of a handler whose sandboxer is <c>microvm</c>.</summary>
public sealed record MicroVmConfig
{
    public string QemuPath { get; init; } = "qemu-system-x86_64";
    /// <summary>Where hack/build-microvm.sh installs the guest.</summary>
    public string KernelPath { get; init; } = "/usr/local/lib/hull/microvm/vmlinux";
    public string InitrdPath { get; init; } = "/usr/local/lib/hull/microvm/initramfs.cpio";
    public int MemoryMib { get; init; } = 256;
    public int Vcpus { get; init; } = 1;
    /// <summary><c>auto</c>, <c>kvm</c> or <c>tcg</c>.</summary>
    public string Accel { get; init; } = "auto";
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(90);
}

/// <summary><c>[plugins.'io.containerd.cri.v1.runtime'.cni]</c>.</summary>
public sealed record CniConfig
{
    public IReadOnlyList<string> BinDirs { get; init; } = [Defaults.CniBinDir];
    public string ConfDir { get; init; } = Defaults.CniConfDir;
    public int MaxConfNum { get; init; } = 1;
    public string ConfTemplate { get; init; } = "";
    public bool SetupSerially { get; init; }
    /// <summary><c>ipv4</c> (or empty), <c>ipv6</c> or <c>cni</c>.</summary>
    public string IpPref { get; init; } = "";
    public bool UseInternalLoopback { get; init; }
}

/// <summary><c>[plugins.'io.containerd.cri.v1.images']</c>.</summary>
public sealed record CriImagesConfig
{
    public string Snapshotter { get; init; } = Defaults.Snapshotter;
    public bool DisableSnapshotAnnotations { get; init; } = true;
    public bool DiscardUnpackedLayers { get; init; }
    /// <summary><c>pinned_images</c>: name → image reference; images the kubelet may not garbage-collect.</summary>
    public IReadOnlyDictionary<string, string> PinnedImages { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
    /// <summary><c>pinned_images.sandbox</c>; empty means no pause image (Hull's infra process needs none).</summary>
    public string PinnedSandboxImage => PinnedImages.TryGetValue("sandbox", out var image) ? image : "";
    public int MaxConcurrentDownloads { get; init; } = 3;
    /// <summary>Zero means no timeout.</summary>
    public TimeSpan ImagePullProgressTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public bool ImagePullWithSyncFs { get; init; }
    public int StatsCollectPeriod { get; init; } = 10;
    /// <summary><c>registry.config_path</c>: directories of hosts.toml files, separated by ':'.</summary>
    public string RegistryConfigPath { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.grpc.v1.cri']</c>: the streaming server.</summary>
public sealed record CriServerConfig
{
    public string StreamServerAddress { get; init; } = "127.0.0.1";
    public string StreamServerPort { get; init; } = "0";
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromHours(4);
    public bool EnableTlsStreaming { get; init; }
    /// <summary><c>x509_key_pair_streaming.tls_cert_file</c>.</summary>
    public string TlsCertFile { get; init; } = "";
    /// <summary><c>x509_key_pair_streaming.tls_key_file</c>.</summary>
    public string TlsKeyFile { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.nri.v1.nri']</c>.</summary>
public sealed record NriConfig
{
    public bool Disable { get; init; }
    public string SocketPath { get; init; } = "/var/run/nri/nri.sock";
    public string PluginPath { get; init; } = "/opt/nri/plugins";
    public string PluginConfigPath { get; init; } = "/etc/nri/conf.d";
    public TimeSpan PluginRegistrationTimeout { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan PluginRequestTimeout { get; init; } = TimeSpan.FromSeconds(2);
    public bool DisableConnections { get; init; }
    /// <summary>Hull-only: plugins every event needs (fail closed).</summary>
    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];
    /// <summary>Hull-only: per-plugin request timeouts (Go durations) by name or indexed name.</summary>
    public IReadOnlyDictionary<string, string> PluginRequestTimeouts { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
    public NriValidatorConfig DefaultValidator { get; init; } = new();
}

/// <summary><c>[plugins.'io.containerd.nri.v1.nri'.default_validator]</c>.</summary>
public sealed record NriValidatorConfig
{
    public bool Enable { get; init; }
    public bool RejectOciHookAdjustment { get; init; }
    public bool RejectRuntimeDefaultSeccompAdjustment { get; init; }
    public bool RejectUnconfinedSeccompAdjustment { get; init; }
    public bool RejectCustomSeccompAdjustment { get; init; }
    public bool RejectNamespaceAdjustment { get; init; }
    public bool RejectSysctlAdjustment { get; init; }
    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];
    public string TolerateMissingPluginsAnnotation { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.transfer.v1.local']</c>.</summary>
public sealed record TransferConfig
{
    public int MaxConcurrentDownloads { get; init; } = 3;
    public int MaxConcurrentUploadedLayers { get; init; } = 3;
    public bool CheckPlatformSupported { get; init; }
    /// <summary>Directories of hosts.toml files for the transfer service, separated by ':'.</summary>
    public string ConfigPath { get; init; } = "";
    /// <summary>Empty means one entry: the host platform unpacked into <c>overlayfs</c>.</summary>
    public IReadOnlyList<UnpackConfiguration> UnpackConfig { get; init; } = [];
}

/// <summary>One <c>[[plugins.'io.containerd.transfer.v1.local'.unpack_config]]</c> entry.</summary>
public sealed record UnpackConfiguration
{
    public string Platform { get; init; } = "";
    public string Snapshotter { get; init; } = Defaults.Snapshotter;
    public string Differ { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.image-verifier.v1.bindir']</c>.</summary>
public sealed record ImageVerifierConfig
{
    public string BinDir { get; init; } = "/opt/containerd/image-verifier/bin";
    public int MaxVerifiers { get; init; } = 10;
    public TimeSpan PerVerifierTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary><c>[plugins.'io.containerd.snapshotter.v1.overlayfs']</c>.</summary>
public sealed record OverlayfsConfig
{
    /// <summary>Empty means <c>&lt;root&gt;/snapshots/overlayfs</c>.</summary>
    public string RootPath { get; init; } = "";
    public bool UpperdirLabel { get; init; }
    public bool SyncRemove { get; init; }
    public bool SlowChown { get; init; }
    public IReadOnlyList<string> MountOptions { get; init; } = [];
}

/// <summary><c>[plugins.'io.hull.kube.v1.node-conditions']</c>: the deprecation condition on the Kubernetes Node.</summary>
public sealed record NodeConditionsConfig
{
    public bool Enable { get; init; }
    /// <summary>Empty means in-cluster credentials (a service account's, in a pod).</summary>
    public string Kubeconfig { get; init; } = "";
    /// <summary>Empty means the <c>NODE_NAME</c> environment variable, then the host name.</summary>
    public string NodeName { get; init; } = "";
    public TimeSpan ResyncInterval { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>Default paths, names and sizes, referenced everywhere else.</summary>
public static class Defaults
{
    public const int ConfigVersion = 3;
    public const string Root = "/var/lib/hull";
    public const string State = "/run/hull";
    public const string Address = "/run/hull/hull.sock";
    public const string ConfigPath = "/etc/hull/config.toml";
    public const int MaxMessageSize = 16 << 20;
    public const string RuntimeName = "runc";
    public const string RuntimeType = "io.containerd.runc.v2";
    public const string Sandboxer = "podsandbox";
    public const string Snapshotter = "overlayfs";
    public const string CniBinDir = "/opt/cni/bin";
    public const string CniConfDir = "/etc/cni/net.d";
}
