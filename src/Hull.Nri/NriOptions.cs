namespace Hull.Nri;

/// <summary>
/// NRI settings: everything containerd 2.x's <c>[plugins.'io.containerd.nri.v1.nri']</c> has, plus Hull's required
/// plugins and per-plugin timeouts. cmd/hulld binds the config to this record.
/// </summary>
public sealed record NriOptions
{
    public const string DefaultSocketPath = "/var/run/nri/nri.sock";
    public const string DefaultPluginPath = "/opt/nri/plugins";
    public const string DefaultPluginConfigPath = "/etc/nri/conf.d";
    public static readonly TimeSpan DefaultRegistrationTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(2);

    /// <summary>NRI off altogether (containerd's <c>disable</c>).</summary>
    public bool Disable { get; init; }
    /// <summary>No socket for externally started plugins; only pre-installed ones run (<c>disable_connections</c>).</summary>
    public bool DisableConnections { get; init; }
    public string SocketPath { get; init; } = DefaultSocketPath;
    /// <summary>Pre-installed plugins, executables named <c>NN-name</c>, launched at start (<c>plugin_path</c>).</summary>
    public string PluginPath { get; init; } = DefaultPluginPath;
    /// <summary>Their configuration: <c>NN-name.conf</c> or <c>name.conf</c> here (<c>plugin_config_path</c>).</summary>
    public string PluginConfigPath { get; init; } = DefaultPluginConfigPath;
    public TimeSpan RegistrationTimeout { get; init; } = DefaultRegistrationTimeout;
    /// <summary>How long a plugin may take to handle one request, unless <see cref="PluginRequestTimeouts"/> says otherwise.</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;
    /// <summary>Per-plugin request timeouts, keyed by plugin name ("logger") or indexed name ("10-logger").</summary>
    public IReadOnlyDictionary<string, TimeSpan> PluginRequestTimeouts { get; init; } = new Dictionary<string, TimeSpan>();
    /// <summary>
    /// Plugins (name or indexed name) every pod and container event needs (Hull's addition, containerd/nri#114):
    /// while one is not connected, or when it fails or times out, the event's CRI call fails naming it instead of
    /// going ahead without it.
    /// </summary>
    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];
    /// <summary>The built-in default validator (containerd's <c>default_validator</c>); null or not enabled: none.</summary>
    public DefaultValidatorOptions? DefaultValidator { get; init; }

    public TimeSpan RequestTimeoutFor(string name, string index) =>
        PluginRequestTimeouts.TryGetValue($"{index}-{name}", out var t) || PluginRequestTimeouts.TryGetValue(name, out t) ? t : RequestTimeout;
}

/// <summary>containerd/nri's default validator configuration (plugins/default-validator).</summary>
public sealed record DefaultValidatorOptions
{
    public bool Enable { get; init; }
    public bool RejectOciHookAdjustment { get; init; }
    public bool RejectRuntimeDefaultSeccompAdjustment { get; init; }
    public bool RejectUnconfinedSeccompAdjustment { get; init; }
    public bool RejectCustomSeccompAdjustment { get; init; }
    public bool RejectNamespaceAdjustment { get; init; }
    public bool RejectSysctlAdjustment { get; init; }
    /// <summary>Plugins that must have been consulted for every container adjustment.</summary>
    public IReadOnlyList<string> RequiredPlugins { get; init; } = [];
    /// <summary>An annotation key letting a pod or container tolerate missing required plugins ("true").</summary>
    public string? TolerateMissingPluginsAnnotation { get; init; }
}
