using Hulld.Telemetry;

namespace Hulld.Tests;

public sealed class MetricsDocsTests
{
    private static string DocsPath
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Hull.sln"))) return Path.Combine(dir.FullName, "docs", "metrics.md");
            throw new InvalidOperationException($"no Hull.sln above {AppContext.BaseDirectory}");
        }
    }

    [Fact]
    public void Metrics_reference_is_generated_from_the_instruments()
    {
        string generated = MetricsDocs.Generate();
        if (Environment.GetEnvironmentVariable("HULL_REGENERATE_DOCS") == "1") File.WriteAllText(DocsPath, generated);
        string committed = File.Exists(DocsPath) ? File.ReadAllText(DocsPath) : "";
        Assert.True(committed == generated, $"docs/metrics.md is not what cmd/hulld/Telemetry/MetricsDocs.cs generates. Regenerate it with: {MetricsDocs.RegenerateHint}");
    }

    [Fact]
    public void Every_metric_follows_the_Prometheus_naming_conventions()
    {
        var families = HullMeters.Families();
        Assert.Contains(families, f => f.Name == "hull_grpc_server_requests_total");
        Assert.Contains(families, f => f.Name == "hull_nri_plugin_calls_total");
        foreach (var family in families)
        {
            Assert.Matches("^hull_[a-z0-9_]+$", family.Name);
            Assert.True(family.Type == "counter" == family.Name.EndsWith("_total", StringComparison.Ordinal),
                $"{family.Name}: counters, and only counters, end in _total");
            Assert.False(string.IsNullOrWhiteSpace(family.Help), $"{family.Name} has no description");
            Assert.DoesNotContain(family.Labels, l => l is "id" && family.Name != "hull_deprecations_in_use" || l.Contains("name", StringComparison.Ordinal) || l.Contains("container", StringComparison.Ordinal));
            if (family.Type == "histogram") Assert.NotNull(family.Buckets);
        }
    }
}
