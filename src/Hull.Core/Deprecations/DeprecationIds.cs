namespace Hull.Core.Deprecations;

/// <summary>
/// Stable deprecation IDs in containerd's namespace with the message each prints. The IDs are the
/// ones containerd uses (pkg/deprecation), so operators' alerts keep working after a switch.
/// </summary>
public static class DeprecationIds
{
    private const string Prefix = "io.containerd.deprecation/";

    public const string CriRegistryMirrors = Prefix + "cri-registry-mirrors";
    public const string CriRegistryAuths = Prefix + "cri-registry-auths";
    public const string CriRegistryConfigs = Prefix + "cri-registry-configs";
    public const string CriCniBinDir = Prefix + "cri-cni-bin-dir";
    public const string ConfigVersion1 = Prefix + "config-version-1";
    public const string ConfigVersion2 = Prefix + "config-version-2";
    public const string RuntimeV1 = Prefix + "runtime-v1";
    public const string RuntimeRuncV1 = Prefix + "runtime-runc-v1";
    public const string AufsSnapshotter = Prefix + "aufs-snapshotter";
    public const string RestartLogpath = Prefix + "restart-logpath";
    public const string CriApiV1Alpha2 = Prefix + "cri-api-v1alpha2";
    public const string PullSchema1Image = Prefix + "pull-schema-1-image";
    public const string CgroupV1 = Prefix + "cgroup-v1";
    public const string EnableCdi = Prefix + "enable-cdi";
    public const string TracingProcessorConfig = Prefix + "tracing-processor-config";
    public const string SandboxImage = Prefix + "cri-sandbox-image";
    public const string NriPluginInterface = Prefix + "nri-plugin-interface";

    public static readonly IReadOnlyDictionary<string, string> Messages = new Dictionary<string, string>
    {
        [CriRegistryMirrors] = "The `mirrors` property of `[plugins.\"io.containerd.grpc.v1.cri\".registry]` is deprecated. Use `config_path` with hosts.toml files instead.",
        [CriRegistryAuths] = "The `auths` property of `[plugins.\"io.containerd.grpc.v1.cri\".registry]` is deprecated. Use `ImagePullSecrets` instead.",
        [CriRegistryConfigs] = "The `configs` property of `[plugins.\"io.containerd.grpc.v1.cri\".registry]` is deprecated. Use `config_path` with hosts.toml files instead.",
        [CriCniBinDir] = "The `bin_dir` property of `[plugins.\"io.containerd.cri.v1.runtime\".cni]` is deprecated. Use `bin_dirs` instead.",
        [ConfigVersion1] = "Configuration version 1 is deprecated. Run `hulld config migrate` to convert it to version 3.",
        [ConfigVersion2] = "Configuration version 2 is deprecated. Run `hulld config migrate` to convert it to version 3.",
        [RuntimeV1] = "The `io.containerd.runtime.v1.linux` runtime is deprecated. Use `io.containerd.runc.v2` instead.",
        [RuntimeRuncV1] = "The `io.containerd.runc.v1` runtime is deprecated. Use `io.containerd.runc.v2` instead.",
        [AufsSnapshotter] = "The aufs snapshotter is deprecated. Use overlayfs instead.",
        [RestartLogpath] = "The `containerd.io/restart.logpath` label is deprecated. Use `containerd.io/restart.loguri` instead.",
        [CriApiV1Alpha2] = "CRI API v1alpha2 is removed. Use CRI API v1 instead.",
        [PullSchema1Image] = "Docker image schema 1 is deprecated and not pulled. Rebuild and push the image with schema 2 or OCI.",
        [CgroupV1] = "The support for cgroup v1 is deprecated. Migrate the node to cgroup v2.",
        [EnableCdi] = "The `enable_cdi` property of `[plugins.\"io.containerd.cri.v1.runtime\"]` is deprecated since containerd 2.2 and removed in 2.3, where CDI is always enabled. Remove the key.",
        [TracingProcessorConfig] = "The `io.containerd.tracing.processor.v1` plugin config is deprecated. Use OTEL_* environment variables instead.",
        [NriPluginInterface] = "NRI plugin uses a deprecated interface.",
        [SandboxImage] = "The `sandbox_image` property is deprecated. Use `pinned_images.sandbox` of `[plugins.\"io.containerd.cri.v1.images\"]` instead.",
    };

    public static string MessageFor(string id) => Messages.TryGetValue(id, out var m) ? m : id;
}
