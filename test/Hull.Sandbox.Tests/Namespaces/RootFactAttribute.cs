namespace Hull.Sandbox.Tests.Namespaces;

/// <summary>
/// A test that needs root (namespaces, mounts, veths, iptables) and, when named, real binaries such as the CNI
/// plugins. Skipped with the reason where they are missing, except when HULL_E2E_REQUIRED=1 (CI), where it fails.
/// </summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(params string[] requiredFiles)
    {
        if (HostPrerequisites.Missing(requiredFiles) is { } reason && Environment.GetEnvironmentVariable("HULL_E2E_REQUIRED") != "1")
            Skip = reason;
    }
}

public static class HostPrerequisites
{
    /// <summary>Where Debian's containernetworking-plugins installs the plugins.</summary>
    public const string CniBinDir = "/usr/lib/cni";

    public static string? Missing(IEnumerable<string> files)
    {
        if (Environment.UserName != "root") return "needs root";
        foreach (var file in files)
        {
            var path = Path.IsPathRooted(file) ? file : Path.Combine(CniBinDir, file);
            if (!File.Exists(path)) return $"needs {path} (Debian: containernetworking-plugins, iptables, iproute2)";
        }
        return null;
    }
}
