namespace Hull.E2E.Fixtures;

/// <summary>
/// An end-to-end test: it needs root and the real binaries. Where they are missing it is skipped with
/// the reason, except under CI (HULL_E2E_REQUIRED=1), where a missing prerequisite fails the test.
/// </summary>
public sealed class E2EFactAttribute : FactAttribute
{
    public E2EFactAttribute(params string[] requiredTools)
    {
        if (Prerequisites.Missing(requiredTools) is { } reason && !Prerequisites.Required) Skip = reason;
    }
}

public static class Prerequisites
{
    /// <summary>Set by .ci/run: the machine was provisioned, so nothing may skip.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("HULL_E2E_REQUIRED") == "1";

    public static string? Missing(IEnumerable<string> tools)
    {
        if (Environment.UserName != "root" && Environment.GetEnvironmentVariable("USER") != "root")
            return "end-to-end tests run as root";
        foreach (var tool in tools)
        {
            var path = Resolve(tool);
            if (path is null) return $"{tool} is not installed; run hack/install-deps.sh";
        }
        return null;
    }

    public static string? Resolve(string tool)
    {
        if (Path.IsPathRooted(tool)) return File.Exists(tool) ? tool : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
            if (File.Exists(Path.Combine(dir, tool))) return Path.Combine(dir, tool);
        return null;
    }
}
