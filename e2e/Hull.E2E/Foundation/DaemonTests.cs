using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Foundation;

/// <summary>hulld as a process: its socket, its lifecycle, and its answers to CRI's identity calls.</summary>
public sealed class DaemonTests
{
    [E2EFact]
    public async Task Version_names_hull_and_cri_v1()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var version = await hulld.Cri.VersionAsync();
        Assert.Equal("hull", version.RuntimeName);
        Assert.Equal("v1", version.RuntimeApiVersion);
        Assert.False(string.IsNullOrEmpty(version.RuntimeVersion));
    }

    [E2EFact("runc")]
    public async Task Status_reports_runtime_ready_network_not_ready_without_cni_config_and_the_handlers()
    {
        var cniDir = Directory.CreateTempSubdirectory("hull-e2e-cni-").FullName;
        try
        {
            await using var hulld = await HulldProcess.StartAsync(ConfigWithCniDir(cniDir));
            var status = await hulld.Cri.StatusAsync(verbose: true);
            var runtime = status.Status.Conditions.Single(c => c.Type == "RuntimeReady");
            var network = status.Status.Conditions.Single(c => c.Type == "NetworkReady");
            Assert.True(runtime.Status, runtime.Message);
            Assert.False(network.Status);
            Assert.Equal("NetworkPluginNotReady", network.Reason);
            Assert.Contains(cniDir, network.Message);
            Assert.Contains(status.RuntimeHandlers, h => h.Name == "");
            Assert.Contains(status.RuntimeHandlers, h => h.Name == "runc");
            Assert.Contains("\"root\"", status.Info["config"]);

            // A CNI config appearing later turns the network ready without a restart.
            await File.WriteAllTextAsync(Path.Combine(cniDir, "10-test.conflist"), """{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"loopback"}]}""");
            status = await hulld.Cri.StatusAsync();
            Assert.True(status.Status.Conditions.Single(c => c.Type == "NetworkReady").Status);
        }
        finally
        {
            Directory.Delete(cniDir, recursive: true);
        }
    }

    [E2EFact]
    public async Task RuntimeConfig_answers_the_cgroup_driver_of_the_default_handler()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var config = await hulld.Cri.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Cgroupfs, config.Linux.CgroupDriver);
    }

    [E2EFact]
    public async Task Unimplemented_rpcs_answer_UNIMPLEMENTED_naming_the_method()
    {
        await using var hulld = await HulldProcess.StartAsync();
        // CheckpointContainer stays unimplemented: Hull does not checkpoint containers.
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            hulld.Cri.Runtime.CheckpointContainerAsync(new CheckpointContainerRequest { ContainerId = "x" }).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("runtime.v1.RuntimeService/CheckpointContainer", e.Status.Detail);
    }

    [E2EFact]
    public async Task Socket_is_mode_0660_owned_by_root()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var mode = File.GetUnixFileMode(hulld.Socket);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, mode);
        var stat = await ProcessRunner.RunAsync("stat", ["-c", "%u:%g", hulld.Socket]);
        Assert.Equal("0:0", stat.Stdout.Trim());
    }

    [E2EFact]
    public async Task Sigterm_stops_cleanly_and_removes_the_socket()
    {
        var hulld = await HulldProcess.StartAsync();
        Assert.Equal(0, await hulld.StopAsync());
        Assert.Contains("stopped", hulld.Log);
        await hulld.DisposeAsync(); // proves nothing is left
    }

    [E2EFact]
    public async Task A_second_hulld_on_the_same_socket_refuses_to_start()
    {
        await using var first = await HulldProcess.StartAsync();
        var otherState = Path.Combine(first.Dir, "other-state");
        var second = await ProcessRunner.DotnetAsync(Repo.HulldDll,
            ["--address", first.Socket, "--root", Path.Combine(first.Dir, "other-root"), "--state", otherState], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains("in use", second.Stdout + second.Stderr);
        // The first daemon is unharmed.
        Assert.Equal("hull", (await first.Cri.VersionAsync()).RuntimeName);
    }

    [E2EFact]
    public async Task A_second_hulld_on_the_same_root_with_another_state_refuses_to_start()
    {
        await using var first = await HulldProcess.StartAsync();
        var second = await ProcessRunner.DotnetAsync(Repo.HulldDll,
            ["--address", Path.Combine(first.Dir, "other.sock"), "--root", first.Root, "--state", Path.Combine(first.Dir, "other-state")],
            TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains($"another hulld is running with root directory {first.Root}", second.Stdout + second.Stderr);
        Assert.Equal("hull", (await first.Cri.VersionAsync()).RuntimeName);
    }

    [E2EFact]
    public async Task Root_and_state_are_0711_even_when_they_existed_wider()
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-modes-").FullName;
        foreach (var d in new[] { "root", "state" })
            Directory.CreateDirectory(Path.Combine(dir, d), (UnixFileMode)0b111_111_111);
        await using var hulld = await HulldProcess.StartInAsync(dir, null);
        Assert.Equal((UnixFileMode)0b111_001_001, File.GetUnixFileMode(hulld.Root));
        Assert.Equal((UnixFileMode)0b111_001_001, File.GetUnixFileMode(hulld.State));
    }

    [E2EFact]
    public async Task A_stale_socket_left_by_a_killed_hulld_is_replaced()
    {
        var first = await HulldProcess.StartAsync();
        await first.KillAsync();
        Assert.True(File.Exists(first.Socket), "kill -9 leaves the socket file behind");
        await using var second = await HulldProcess.StartInAsync(first.Dir, null);
        Assert.Equal("hull", (await second.Cri.VersionAsync()).RuntimeName);
    }

    [E2EFact]
    public async Task Shutdown_drains_an_open_event_stream_and_exits_promptly()
    {
        var hulld = await HulldProcess.StartAsync();
        var events = Task.Run(async () =>
        {
            using var stream = hulld.Cri.Runtime.GetContainerEvents(new GetEventsRequest());
            await foreach (var _ in stream.ResponseStream.ReadAllAsync()) { }
        });
        await Task.Delay(300);
        var started = DateTime.UtcNow;
        Assert.Equal(0, await hulld.StopAsync(TimeSpan.FromSeconds(15)));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), $"shutdown took {DateTime.UtcNow - started}");
        var ended = await Assert.ThrowsAsync<RpcException>(() => events.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.Unavailable, ended.StatusCode);
        await hulld.DisposeAsync();
    }

    [E2EFact]
    public async Task Runtime_v1alpha2_answers_UNIMPLEMENTED_and_records_the_deprecation()
    {
        await using var hulld = await HulldProcess.StartAsync();
        var node = await ProcessRunner.RunAsync("node", [Repo.NodeInteropClient, "--socket", hulld.Socket, "v1alpha2"]);
        Assert.Contains("\"code\":12", node.Stdout);
        Assert.Contains("v1alpha2", node.Stdout);
        var list = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["-a", hulld.Socket, "deprecations", "list", "--format", "json"]);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("io.containerd.deprecation/cri-api-v1alpha2", list.Stdout);
    }

    [E2EFact]
    public async Task Deprecation_warnings_survive_a_restart_and_a_kill()
    {
        var first = await HulldProcess.StartAsync();
        await ProcessRunner.RunAsync("node", [Repo.NodeInteropClient, "--socket", first.Socket, "v1alpha2"]);
        var before = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["-a", first.Socket, "deprecations", "list", "--format", "json"]);
        Assert.Contains("cri-api-v1alpha2", before.Stdout);
        await first.KillAsync(); // kill -9: nothing acknowledged may be lost
        await using var second = await HulldProcess.StartInAsync(first.Dir, null);
        var after = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["-a", second.Socket, "deprecations", "list", "--format", "json"]);
        Assert.Equal(0, after.ExitCode);
        var warning = System.Text.Json.JsonDocument.Parse(after.Stdout).RootElement.EnumerateArray()
            .Single(w => w.GetProperty("id").GetString() == "io.containerd.deprecation/cri-api-v1alpha2");
        Assert.Equal(1, warning.GetProperty("occurrences").GetInt64());
        var original = System.Text.Json.JsonDocument.Parse(before.Stdout).RootElement.EnumerateArray()
            .Single(w => w.GetProperty("id").GetString() == "io.containerd.deprecation/cri-api-v1alpha2");
        Assert.Equal(original.GetProperty("lastOccurrence").GetString(), warning.GetProperty("lastOccurrence").GetString());
    }

    [E2EFact]
    public async Task Status_reports_deprecation_warnings_as_a_condition_honouring_ignore_deprecation_warnings()
    {
        await using (var hulld = await HulldProcess.StartAsync())
        {
            await ProcessRunner.RunAsync("node", [Repo.NodeInteropClient, "--socket", hulld.Socket, "v1alpha2"]);
            var condition = (await hulld.Cri.StatusAsync()).Status.Conditions.Single(c => c.Type == "ContainerRuntimeHasNoDeprecations");
            Assert.False(condition.Status);
            Assert.Equal("DeprecatedFeaturesInUse", condition.Reason);
            var warnings = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(condition.Message)!;
            Assert.Contains("io.containerd.deprecation/cri-api-v1alpha2", warnings.Keys);
        }
        const string ignoring = """
            version = 3
            [plugins.'io.containerd.cri.v1.runtime']
              ignore_deprecation_warnings = ['io.containerd.deprecation/cri-api-v1alpha2', 'io.containerd.deprecation/cgroup-v1']
            """;
        await using (var hulld = await HulldProcess.StartAsync(ignoring))
        {
            await ProcessRunner.RunAsync("node", [Repo.NodeInteropClient, "--socket", hulld.Socket, "v1alpha2"]);
            var condition = (await hulld.Cri.StatusAsync()).Status.Conditions.Single(c => c.Type == "ContainerRuntimeHasNoDeprecations");
            Assert.True(condition.Status, condition.Message);
        }
    }

    internal static string ConfigWithCniDir(string dir) => $"""
        version = 3
        [plugins.'io.containerd.cri.v1.runtime'.cni]
          conf_dir = '{dir}'
        """;
}
