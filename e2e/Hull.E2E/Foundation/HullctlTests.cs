using Hull.E2E.Fixtures;

namespace Hull.E2E.Foundation;

/// <summary>hullctl as an operator runs it, against a real hulld.</summary>
public sealed class HullctlTests
{
    private static Task<ProcessResult> Hullctl(HulldProcess hulld, params string[] args) =>
        ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", hulld.Socket, .. args]);

    [E2EFact]
    public async Task Version_prints_client_and_server()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var result = await Hullctl(hulld, "version");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Client: hullctl", result.Stdout);
        Assert.Contains($"Server: hull", result.Stdout);
        Assert.Contains($"pid {hulld.Pid}", result.Stdout);
    }

    [E2EFact]
    public async Task Info_shows_identity_conditions_and_handlers()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var result = await Hullctl(hulld, "info");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"PID:           {hulld.Pid}", result.Stdout);
        Assert.Contains(hulld.Root, result.Stdout);
        Assert.Matches(@"RuntimeReady\s+(true|false)", result.Stdout);
        // The handler table says what CRI Status reports for the default handler (features depend on the node).
        var features = (await hulld.Cri.StatusAsync()).RuntimeHandlers.Single(h => h.Name.Length == 0).Features;
        Assert.Matches($@"\(default\)\s+{features.RecursiveReadOnlyMounts.ToString().ToLowerInvariant()}\s+{features.UserNamespaces.ToString().ToLowerInvariant()}",
            result.Stdout);
        var json = await Hullctl(hulld, "info", "--format", "json");
        Assert.Equal(0, json.ExitCode);
        Assert.Contains("\"cgroupDriver\"", json.Stdout);
    }

    [E2EFact]
    public async Task Plugins_ls_lists_the_cri_plugin_with_its_socket()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var result = await Hullctl(hulld, "plugins", "ls");
        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"io\.containerd\.grpc\.v1\s+cri\s+ok\s+address=" + System.Text.RegularExpressions.Regex.Escape(hulld.Socket), result.Stdout);
    }

    [E2EFact]
    public async Task An_unreachable_daemon_is_reported_clearly()
    {
        var result = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", "/nonexistent/hull.sock", "version"]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot reach hulld at /nonexistent/hull.sock", result.Stderr);
        Assert.Contains("does not exist", result.Stderr);
    }
}
