namespace Hull.Config.Tests.Toml;

/// <summary>Locates the toml-test suite (https://github.com/toml-lang/toml-test) shipped in the shared test data.</summary>
internal static class TomlTestSuite
{
    public const string ListFile = "files-toml-1.0.0";

    /// <summary>Row used when the data cannot be found, so the theory fails loudly instead of having no rows.</summary>
    public const string MissingMarker = "<toml-test data missing>";

    private static readonly Lazy<(string? Root, string Problem)> Located = new(Locate);

    /// <summary>The suite directory, or null when missing (see <see cref="Problem"/>).</summary>
    public static string? Root => Located.Value.Root;

    public static string Problem => Located.Value.Problem;

    public static string RequireRoot() =>
        Root ?? throw new InvalidOperationException($"toml-test conformance data is missing: {Problem}");

    /// <summary>Case names (path without ".toml", e.g. "valid/array/array") listed for TOML 1.0.0.</summary>
    public static IReadOnlyList<string> Cases(string kind)
    {
        if (Root is null)
        {
            return [MissingMarker];
        }

        return File.ReadAllLines(Path.Combine(Root, ListFile))
            .Select(line => line.Trim())
            .Where(line => line.StartsWith(kind + "/", StringComparison.Ordinal) && line.EndsWith(".toml", StringComparison.Ordinal))
            .Select(line => line[..^".toml".Length])
            .ToList();
    }

    public static string PathOf(string caseName, string extension)
    {
        if (caseName == MissingMarker)
        {
            RequireRoot();
        }

        return Path.Combine(RequireRoot(), caseName + extension);
    }

    private static (string? Root, string Problem) Locate()
    {
        string? shared = Environment.GetEnvironmentVariable("HULL_SHARED_DIR");
        string how;
        if (!string.IsNullOrEmpty(shared))
        {
            how = $"HULL_SHARED_DIR={shared}";
        }
        else
        {
            string? repoRoot = FindRepoRoot(AppContext.BaseDirectory);
            if (repoRoot is null)
            {
                return (null, $"no Hull.sln found above {AppContext.BaseDirectory}; set HULL_SHARED_DIR to the shared directory");
            }

            shared = Path.GetFullPath(Path.Combine(repoRoot, "..", "shared"));
            how = $"derived from repo root {repoRoot}";
        }

        string suite = Path.Combine(shared, "testdata", "toml-test");
        if (!File.Exists(Path.Combine(suite, ListFile)))
        {
            return (null, $"'{Path.Combine(suite, ListFile)}' does not exist ({how}); set HULL_SHARED_DIR to the shared directory containing testdata/toml-test");
        }

        return (suite, string.Empty);
    }

    private static string? FindRepoRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Hull.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
