using Hull.Linux;

namespace Hull.Runtime.Spec;

/// <summary>
/// Path resolution inside a container root file system as the container would see it: symbolic links are followed
/// with the rootfs as "/", so an image's /etc/passwd -> /../../host/etc/passwd stays inside the image.
/// </summary>
public static class RootfsPath
{
    private const int MaxSymlinks = 40; // the kernel's limit for one path walk

    /// <summary>The host path of <paramref name="containerPath"/> inside <paramref name="rootfs"/>, or null when it does not exist.</summary>
    public static string? Resolve(string rootfs, string containerPath)
    {
        var pending = new Stack<string>(Split(containerPath).Reverse());
        var resolved = new List<string>();
        int links = 0;
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            if (part == ".") continue;
            if (part == "..")
            {
                if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1);
                continue;
            }
            resolved.Add(part);
            string host = Join(rootfs, resolved);
            var status = FileStatus.TryGet(host);
            if (status is null) return null;
            if (status.Value.IsSymlink)
            {
                if (++links > MaxSymlinks) return null;
                string target = new FileInfo(host).LinkTarget ?? "";
                resolved.RemoveAt(resolved.Count - 1);
                if (target.StartsWith('/')) resolved.Clear();
                foreach (var t in Split(target).Reverse()) pending.Push(t);
                continue;
            }
            if (!status.Value.IsDirectory && pending.Count > 0) return null;
        }
        return Join(rootfs, resolved);
    }

    /// <summary>Reads a text file of the container's file system, or null when it does not exist or is not a regular file.</summary>
    public static async Task<string?> ReadTextAsync(string rootfs, string containerPath, CancellationToken cancellationToken)
    {
        string? host = Resolve(rootfs, containerPath);
        if (host is null) return null;
        var status = FileStatus.TryGet(host);
        if (status is not { Type: UnixFileType.Regular }) return null;
        try
        {
            return await File.ReadAllTextAsync(host, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
    }

    private static IEnumerable<string> Split(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);

    private static string Join(string rootfs, List<string> parts) =>
        parts.Count == 0 ? rootfs : Path.Join(rootfs, string.Join('/', parts));
}
