using Hull.Linux;

namespace Hull.Runtime.Spec;

/// <summary>Writes a bundle's config.json so that a crash leaves either the old file or the whole new one.</summary>
public static class SpecWriter
{
    public const string ConfigFileName = "config.json";

    /// <summary>Writes <paramref name="spec"/> to <c>bundleDir/config.json</c>: a temporary file, fsync, rename, fsync of the directory.</summary>
    public static async Task<string> WriteAsync(OciSpec spec, string bundleDir, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Directory.CreateDirectory(bundleDir);
        string target = Path.Combine(bundleDir, ConfigFileName);
        string temp = Path.Combine(bundleDir, $".{ConfigFileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        byte[] bytes = OciJson.SerializeToUtf8Bytes(spec);
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Options = FileOptions.Asynchronous,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            await using (var stream = new FileStream(temp, options))
            {
                await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
            FileSync.SyncDirectory(bundleDir);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
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
