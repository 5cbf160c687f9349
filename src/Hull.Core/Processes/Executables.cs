namespace Hull.Core.Processes;

/// <summary>
/// Finds a program by name the way a shell would, plus the sbin directories a daemon's PATH may lack (hulld is often
/// started by an init system with a minimal PATH). The one place Hull resolves a binary name.
/// </summary>
public static class Executables
{
    /// <summary>The PATH a child process gets when hulld has none (and the directories searched after PATH).</summary>
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private static readonly string[] DaemonDirectories = DefaultPath.Split(':');

    /// <summary>hulld's PATH, or <see cref="DefaultPath"/>: what Hull passes to the programs it starts.</summary>
    public static string SearchPath => Environment.GetEnvironmentVariable("PATH") is { Length: > 0 } path ? path : DefaultPath;

    /// <summary>The absolute path of <paramref name="nameOrPath"/>, or null when it does not exist.</summary>
    public static string? TryResolve(string nameOrPath)
    {
        if (Path.IsPathRooted(nameOrPath)) return File.Exists(nameOrPath) ? nameOrPath : null;
        if (nameOrPath.Length == 0 || nameOrPath.Contains('/')) return null;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(DaemonDirectories))
        {
            var candidate = Path.Combine(dir, nameOrPath);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Like <see cref="TryResolve"/>, but a missing program is a FailedPrecondition naming <paramref name="what"/> it is.</summary>
    public static string Resolve(string nameOrPath, string what) =>
        TryResolve(nameOrPath) ?? throw new HullException(ErrorKind.FailedPrecondition, Path.IsPathRooted(nameOrPath)
            ? $"{what} \"{nameOrPath}\" does not exist"
            : $"{what} \"{nameOrPath}\" is not installed (not found on PATH)");
}
