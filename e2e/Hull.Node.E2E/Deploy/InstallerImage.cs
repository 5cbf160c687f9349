using System.Text.Json;
using Hull.E2E.Fixtures;
using Hull.Node.E2E.Cluster;

namespace Hull.Node.E2E.Deploy;

/// <summary>
/// The DaemonSet installer image as hack/build-image.sh writes it: an OCI image layout (artifacts/hull-image, or
/// HULL_INSTALLER_IMAGE_OCI). Building it takes minutes (debootstrap, a self-contained ReadyToRun publish), more than a
/// test may take, so it is built before the tests (.ci/run does) and a test only pushes it to its registry.
/// </summary>
public static class InstallerImage
{
    public static string Layout { get; } = Environment.GetEnvironmentVariable("HULL_INSTALLER_IMAGE_OCI") is { Length: > 0 } dir
        ? dir
        : Path.Combine(Repo.Root, "artifacts", "hull-image");

    public static string Index => Path.Combine(Layout, "index.json");

    /// <summary>The layout's one tag (the version).</summary>
    public static string Tag
    {
        get
        {
            using var index = JsonDocument.Parse(File.ReadAllText(Index));
            return index.RootElement.GetProperty("manifests").EnumerateArray()
                .Select(m => m.TryGetProperty("annotations", out var a) && a.TryGetProperty("org.opencontainers.image.ref.name", out var name) ? name.GetString() : null)
                .Single(t => t is not null)!;
        }
    }

    /// <summary>Copies the image to the registry as hull/installer:TAG; returns the reference.</summary>
    public static async Task<string> PushAsync(RegistryProcess registry)
    {
        string reference = registry.Reference("hull/installer", Tag);
        var result = await ProcessRunner.RunAsync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", $"oci:{Layout}:{Tag}", $"docker://{reference}"],
            TimeSpan.FromMinutes(3));
        if (result.ExitCode != 0) throw new InvalidOperationException($"skopeo copy of the installer image failed: {result}");
        return reference;
    }
}

/// <summary>A node scenario that needs the installer image (hack/build-image.sh) and the chart renderer besides the node.</summary>
public sealed class InstallerImageFactAttribute : FactAttribute
{
    public InstallerImageFactAttribute()
    {
        string? reason = Prerequisites.Missing([.. KubeTools.NodeTools, Chart.Renderer]);
        if (reason is null && !File.Exists(InstallerImage.Index))
            reason = $"no installer image at {InstallerImage.Layout}: run hack/build-image.sh (or set HULL_INSTALLER_IMAGE_OCI)";
        if (reason is not null && !Prerequisites.Required) Skip = reason;
    }
}
