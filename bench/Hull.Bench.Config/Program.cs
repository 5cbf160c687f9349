using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Hull.Config;

namespace Hull.Bench.Config;

/// <summary>
/// How long hulld takes to load its config: <see cref="ConfigLoader.LoadText"/> (TOML parse, version 1/2 → 3
/// migration, schema binding and checks) of deploy/config.toml and of a 300-line containerd version 2 node
/// config (test/Hull.Config.Tests/testdata/v2-large-node.toml).
/// Run: <c>dotnet run -c Release --project bench/Hull.Bench.Config</c> (about 2 minutes); any
/// BenchmarkDotNet arguments (e.g. <c>--filter *Large*</c>) are passed through.
/// </summary>
public static class Program
{
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args.Contains("--filter") ? args : [.. args, "--filter", "*"]);
}

/// <summary>
/// A short job: 3 warm-ups and 15 measured iterations, in this process (no generated project to build on a
/// shared 2-core machine, and the bench runs from any directory).
/// </summary>
internal sealed class ShortConfig : ManualConfig
{
    public ShortConfig()
    {
        AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(15).WithToolchain(InProcessEmitToolchain.Instance).WithId("short"));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}

[Config(typeof(ShortConfig))]
public class ConfigLoadBenchmarks
{
    private string _deploy = "";
    private string _large = "";

    [GlobalSetup]
    public void Setup()
    {
        _deploy = Resource("deploy-config.toml");
        _large = Resource("v2-large-node.toml");

        // Measure the path hulld takes with a good config, not an error path.
        foreach (var (name, text) in new[] { ("deploy/config.toml", _deploy), ("v2-large-node.toml", _large) })
        {
            var result = ConfigLoader.LoadText(text, name);
            if (result.HasErrors)
            {
                throw new InvalidOperationException($"{name} does not load cleanly: {string.Join("; ", result.Diagnostics)}");
            }
        }
    }

    [Benchmark(Description = "deploy/config.toml (25 lines, v3)")]
    public ConfigLoadResult DeployConfig() => ConfigLoader.LoadText(_deploy, "config.toml");

    [Benchmark(Description = "v2-large-node.toml (308 lines, v2)")]
    public ConfigLoadResult LargeV2Config() => ConfigLoader.LoadText(_large, "v2-large-node.toml");

    private static string Resource(string name)
    {
        using var stream = typeof(ConfigLoadBenchmarks).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
