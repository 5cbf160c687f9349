using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.Deploy;

/// <summary>
/// The Helm chart (charts/hull) rendered by hack/chart-render (Go's text/template, Helm's engine, with the Helm
/// functions the chart uses; Helm itself is not packaged here), and the plain manifests generated from it.
/// </summary>
public static class Chart
{
    public static string Dir => Path.Combine(Repo.Root, "charts", "hull");
    /// <summary>Built by hack/install-deps.sh (and hack/render-manifests.sh).</summary>
    public static string Renderer => Path.Combine(Repo.Root, "hack", "chart-render", "bin", "chart-render");
    /// <summary>deploy/kubernetes/hull.yaml: the chart for release "hull" in namespace "hull-system", after that Namespace.</summary>
    public static string PlainManifests => Path.Combine(Repo.Root, "deploy", "kubernetes", "hull.yaml");

    /// <summary>What <c>helm template RELEASE charts/hull -n NAMESPACE [-f values]</c> prints.</summary>
    public static async Task<string> RenderAsync(string release, string ns, string? valuesYaml = null)
    {
        var args = new List<string> { "-name", release, "-namespace", ns };
        string? values = null;
        if (valuesYaml is not null)
        {
            values = Path.Combine(Path.GetTempPath(), $"hull-chart-values-{Guid.NewGuid():N}.yaml");
            await File.WriteAllTextAsync(values, valuesYaml);
            args.AddRange(["-f", values]);
        }
        try
        {
            var result = await ProcessRunner.RunAsync(Renderer, [.. args, Dir]);
            if (result.ExitCode != 0) throw new InvalidOperationException($"chart-render failed: {result}");
            return result.Stdout;
        }
        finally
        {
            if (values is not null) File.Delete(values);
        }
    }

    /// <summary>The YAML documents of a rendering, each with its "# Source:" line.</summary>
    public static List<string> Documents(string rendered) =>
        rendered.Split("---\n", StringSplitOptions.RemoveEmptyEntries).Select(d => d.Trim()).Where(d => d.Contains("kind:")).ToList();
}

/// <summary>A test that needs the chart renderer, and with <paramref name="cluster"/> the API server's binaries.</summary>
public sealed class DeployFactAttribute : FactAttribute
{
    public DeployFactAttribute(bool cluster = true)
    {
        string[] tools = cluster ? [.. KubeTools.ClusterTools, Chart.Renderer] : [Chart.Renderer];
        if (Prerequisites.Missing(tools) is { } reason && !Prerequisites.Required) Skip = reason;
    }
}
