namespace Hull.Config;

/// <summary>
/// The effective configuration, in containerd's version 3 layout and names. Defaults equal
/// containerd 2.x's where the feature is the same; <see cref="Defaults"/> is their one home.
/// </summary>
public sealed record HullConfig
{
    public int Version { get; init; } = 3;
    public string Root { get; init; } = Defaults.Root;
    public string State { get; init; } = Defaults.State;
    /// <summary>Hull-only: unknown keys are fatal instead of warnings.</summary>
    public bool Strict { get; init; }
    public GrpcConfig Grpc { get; init; } = new();
    public DebugConfig Debug { get; init; } = new();
    public MetricsConfig Metrics { get; init; } = new();
    public CriRuntimeConfig Runtime { get; init; } = new();
    public CriImagesConfig Images { get; init; } = new();
    public CriServerConfig Server { get; init; } = new();
}

public sealed record GrpcConfig
{
    public string Address { get; init; } = Defaults.Address;
    public int Uid { get; init; }
    public int Gid { get; init; }
    public int MaxRecvMessageSize { get; init; } = Defaults.MaxMessageSize;
    public int MaxSendMessageSize { get; init; } = Defaults.MaxMessageSize;
}

public sealed record DebugConfig
{
    public string Level { get; init; } = "info";
}

public sealed record MetricsConfig
{
    public string Address { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.cri.v1.runtime']</c>.</summary>
public sealed record CriRuntimeConfig
{
    public string DefaultRuntimeName { get; init; } = "runc";
    public IReadOnlyDictionary<string, RuntimeHandlerConfig> Runtimes { get; init; } =
        new Dictionary<string, RuntimeHandlerConfig> { ["runc"] = new() };
    public CniConfig Cni { get; init; } = new();
    public bool EnableCdi { get; init; } = true;
    public IReadOnlyList<string> CdiSpecDirs { get; init; } = ["/etc/cdi", "/var/run/cdi"];
    public IReadOnlyList<string> IgnoreDeprecationWarnings { get; init; } = [];
}

/// <summary><c>containerd.runtimes.&lt;name&gt;</c>: one runtime handler.</summary>
public sealed record RuntimeHandlerConfig
{
    public string RuntimeType { get; init; } = "io.containerd.runc.v2";
    public string RuntimePath { get; init; } = "";
    public string Sandboxer { get; init; } = "podsandbox";
    /// <summary><c>options.BinaryName</c>: the OCI runtime binary; empty means <c>runc</c> on PATH.</summary>
    public string BinaryName { get; init; } = "";
    /// <summary><c>options.SystemdCgroup</c>.</summary>
    public bool SystemdCgroup { get; init; }
}

public sealed record CniConfig
{
    public IReadOnlyList<string> BinDirs { get; init; } = ["/opt/cni/bin"];
    public string ConfDir { get; init; } = "/etc/cni/net.d";
    public int MaxConfNum { get; init; } = 1;
}

/// <summary><c>[plugins.'io.containerd.cri.v1.images']</c>.</summary>
public sealed record CriImagesConfig
{
    public string Snapshotter { get; init; } = "overlayfs";
    public string PinnedSandboxImage { get; init; } = "";
    public int MaxConcurrentDownloads { get; init; } = 3;
    public TimeSpan ImagePullProgressTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public string RegistryConfigPath { get; init; } = "";
}

/// <summary><c>[plugins.'io.containerd.grpc.v1.cri']</c>: the streaming server.</summary>
public sealed record CriServerConfig
{
    public string StreamServerAddress { get; init; } = "127.0.0.1";
    public string StreamServerPort { get; init; } = "0";
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromHours(4);
    public bool EnableTlsStreaming { get; init; }
}

/// <summary>Default paths and sizes, referenced everywhere else.</summary>
public static class Defaults
{
    public const string Root = "/var/lib/hull";
    public const string State = "/run/hull";
    public const string Address = "/run/hull/hull.sock";
    public const string ConfigPath = "/etc/hull/config.toml";
    public const int MaxMessageSize = 16 << 20;
}
