namespace Hull.Config.Tests.Config;

/// <summary>Finds the repository (for docs/configuration.md) and test/Hull.Config.Tests/testdata.</summary>
internal static class TestFiles
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Hull.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Hull.sln above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => Root.Value;

    public static string TestData(string name) => Path.Combine(RepoRoot, "test", "Hull.Config.Tests", "testdata", name);

    public static string[] AllTestData() =>
        Directory.GetFiles(Path.Combine(RepoRoot, "test", "Hull.Config.Tests", "testdata"), "*.toml").Select(Path.GetFileName).OfType<string>().Order().ToArray();

    /// <summary>A temporary file holding <paramref name="toml"/>, deleted on dispose.</summary>
    public static TempFile Write(string toml) => new(toml);

    internal sealed class TempFile : IDisposable
    {
        public TempFile(string toml)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"hull-config-{Guid.NewGuid():N}.toml");
            File.WriteAllText(Path, toml);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}
