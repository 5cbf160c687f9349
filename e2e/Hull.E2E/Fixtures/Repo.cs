namespace Hull.E2E.Fixtures;

/// <summary>Where the repository, its build outputs and the shared test data are.</summary>
public static class Repo
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    public static string Root { get; } = FindRoot();

    public static string HulldDll => Path.Combine(Root, "cmd", "hulld", "bin", Configuration, "net10.0", "hulld.dll");
    public static string HullctlDll => Path.Combine(Root, "cmd", "hullctl", "bin", Configuration, "net10.0", "hullctl.dll");
    public static string CriProto => Path.Combine(Root, "api", "cri", "api.proto");
    public static string NodeInteropClient => Path.Combine(Root, "e2e", "interop", "node", "client.js");
    public static string GoInteropClient => Path.Combine(Root, "e2e", "interop", "go", "bin", "cri-probe");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Hull.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Hull.sln above {AppContext.BaseDirectory}");
    }
}
