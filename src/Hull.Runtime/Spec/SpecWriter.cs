using Hull.Linux;

namespace Hull.Runtime.Spec;

/// <summary>Writes a bundle's config.json so that a crash leaves either the old file or the whole new one.</summary>
public static class SpecWriter
{
    public const string ConfigFileName = "config.json";

    /// <summary>Writes <paramref name="spec"/> to <c>bundleDir/config.json</c> atomically and durably (<see cref="AtomicFile"/>).</summary>
    public static async Task<string> WriteAsync(OciSpec spec, string bundleDir, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Directory.CreateDirectory(bundleDir);
        string target = Path.Combine(bundleDir, ConfigFileName);
        await AtomicFile.WriteAsync(target, OciJson.SerializeToUtf8Bytes(spec), AtomicFile.WorldReadable, cancellationToken).ConfigureAwait(false);
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
