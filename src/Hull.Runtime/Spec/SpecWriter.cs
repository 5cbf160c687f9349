using Hull.Linux;

namespace Hull.Runtime.Spec;

/// <summary>Writes a bundle's config.json so that a crash leaves either the old file or the whole new one.</summary>
public static class SpecWriter
{
    public const string ConfigFileName = "config.json";

    /// <summary>Bundles are 0700: nobody else reaches config.json or the rootfs mounted inside (CVE-2024-25621).</summary>
    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// 0711: the bundle of a user-namespaced container, and the directory holding it, as containerd makes them. The OCI
    /// runtime mounts the rootfs as the pod's mapped root, which is "other" to these root-owned directories, so it must
    /// be able to traverse them; it still cannot list them, and the files inside stay owner only.
    /// </summary>
    public const UnixFileMode TraversableByMappedRoot = OwnerOnly | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>The mode of a bundle (and its parent) for <paramref name="spec"/>: 0711 with a user namespace, else 0700.</summary>
    public static UnixFileMode BundleMode(OciSpec spec) =>
        spec.Linux?.UidMappings is { Count: > 0 } ? TraversableByMappedRoot : OwnerOnly;

    /// <summary>Writes <paramref name="spec"/> to <c>bundleDir/config.json</c> atomically and durably (<see cref="AtomicFile"/>).</summary>
    public static async Task<string> WriteAsync(OciSpec spec, string bundleDir, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var mode = BundleMode(spec);
        Directory.CreateDirectory(bundleDir, mode);
        if (mode != OwnerOnly)
        {
            // Made 0700 before the rootfs was mounted in them; opened up only now that the spec says who runs there.
            File.SetUnixFileMode(bundleDir, mode);
            File.SetUnixFileMode(Path.GetDirectoryName(Path.GetFullPath(bundleDir))!, mode);
        }
        string target = Path.Combine(bundleDir, ConfigFileName);
        // The spec holds the container's environment (secrets among it): owner only, as containerd writes it.
        await AtomicFile.WriteAsync(target, OciJson.SerializeToUtf8Bytes(spec), AtomicFile.Private, cancellationToken).ConfigureAwait(false);
        return target;
    }

    /// <summary>Reads a config.json back (what a restarted hulld does with the bundles it finds).</summary>
    public static async Task<OciSpec> ReadAsync(string bundleDir, CancellationToken cancellationToken = default)
    {
        string path = Path.Combine(bundleDir, ConfigFileName);
        string json = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return OciJson.Deserialize<OciSpec>(json)
            ?? throw new Hull.Core.HullException(Hull.Core.ErrorKind.Internal, $"bundle config \"{path}\" is empty");
    }
}
