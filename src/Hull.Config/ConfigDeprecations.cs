namespace Hull.Config;

/// <summary>
/// The deprecation IDs a configuration can trigger, as containerd spells them (pkg/deprecation).
/// Hull.Config cannot reference Hull.Core, so the strings are literal here; the daemon records
/// what <see cref="ConfigLoadResult.DeprecationIds"/> reports in its deprecation registry.
/// </summary>
public static class ConfigDeprecations
{
    public const string Prefix = "io.containerd.deprecation/";

    public const string ConfigVersion1 = Prefix + "config-version-1";
    public const string ConfigVersion2 = Prefix + "config-version-2";
    public const string CriRegistryMirrors = Prefix + "cri-registry-mirrors";
    public const string CriRegistryAuths = Prefix + "cri-registry-auths";
    public const string CriRegistryConfigs = Prefix + "cri-registry-configs";
    public const string CriCniBinDir = Prefix + "cri-cni-bin-dir";
    public const string RuntimeRuncV1 = Prefix + "runtime-runc-v1";
    public const string RuntimeV1 = Prefix + "runtime-v1";
    public const string AufsSnapshotter = Prefix + "aufs-snapshotter";
    public const string SandboxImage = Prefix + "cri-sandbox-image";
    public const string EnableCdi = Prefix + "enable-cdi";

    /// <summary>The deprecation for a config file of <paramref name="version"/>, or null for the current one.</summary>
    public static string? ForVersion(int version) => version switch
    {
        <= 1 => ConfigVersion1,
        2 => ConfigVersion2,
        _ => null,
    };
}
