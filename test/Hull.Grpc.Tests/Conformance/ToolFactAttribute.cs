namespace Hull.Grpc.Tests.Conformance;

/// <summary>
/// A test that runs an external conformance tool. Without the tool it is skipped with the reason, except
/// under CI (HULL_E2E_REQUIRED=1, set by .ci/run after hack/install-deps.sh installed it), where it fails.
/// </summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool)
    {
        if (TestTools.Find(tool) is null && Environment.GetEnvironmentVariable("HULL_E2E_REQUIRED") != "1")
            Skip = $"{tool} is not installed; hack/install-deps.sh unpacks it into {TestTools.Directory}";
    }
}

/// <summary>The prebuilt test tools ../shared/tools/install.sh unpacks (HULL_TEST_TOOLS overrides the directory).</summary>
public static class TestTools
{
    public static string Directory =>
        Environment.GetEnvironmentVariable("HULL_TEST_TOOLS") is { Length: > 0 } dir ? dir : "/usr/local/lib/hull-test-tools";

    public static string? Find(string tool)
    {
        var candidate = Path.Combine(Directory, tool);
        if (File.Exists(candidate)) return candidate;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, tool))) return Path.Combine(dir, tool);
        return null;
    }
}
