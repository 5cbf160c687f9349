using System.Text.Json;
using Hull.E2E.Fixtures;

namespace Hull.E2E.Configuration;

/// <summary>An operator moving a node from containerd keeps its config: hulld reads, migrates and explains it.</summary>
public sealed class ConfigTests
{
    /// <summary>A containerd 1.7 version 2 config with the deprecated registry.mirrors.</summary>
    private const string Containerd17WithMirrors = """
        version = 2
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "registry.k8s.io/pause:3.9"
          [plugins."io.containerd.grpc.v1.cri".containerd]
            default_runtime_name = "runc"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
              [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                SystemdCgroup = true
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "/opt/cni/bin"
            conf_dir = "/etc/cni/net.d"
          [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
            endpoint = ["https://mirror.example.com"]
        """;

    private static Task<ProcessResult> Hulld(params string[] args) => ProcessRunner.DotnetAsync(Repo.HulldDll, args);

    [E2EFact]
    public async Task Config_check_on_a_containerd_v2_config_prints_the_migration_notice_and_the_mirrors_deprecation()
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-config-").FullName;
        try
        {
            var path = Path.Combine(dir, "config.toml");
            await File.WriteAllTextAsync(path, Containerd17WithMirrors);
            var check = await Hulld("config", "check", "--config", path);
            var output = check.Stdout + check.Stderr;
            Assert.True(check.ExitCode == 0, output);
            Assert.Contains("migrate", output);
            Assert.Contains("cri-registry-mirrors", output);
            Assert.Equal(Containerd17WithMirrors, await File.ReadAllTextAsync(path)); // the file is left alone

            var migrated = await Hulld("config", "migrate", "--config", path);
            Assert.Equal(0, migrated.ExitCode);
            Assert.Contains("version = 3", migrated.Stdout);
            Assert.Contains("io.containerd.cri.v1.images", migrated.Stdout);
            Assert.Contains("registry.k8s.io/pause:3.9", migrated.Stdout);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [E2EFact]
    public async Task Hulld_starts_with_a_v2_config_and_the_deprecations_survive_a_restart()
    {
        var first = await HulldProcess.StartAsync(Containerd17WithMirrors);
        var status = await first.Cri.Runtime.RuntimeConfigAsync(new Hull.Api.Cri.RuntimeConfigRequest());
        Assert.Equal(Hull.Api.Cri.CgroupDriver.Systemd, status.Linux.CgroupDriver); // SystemdCgroup carried over by the migration
        var before = await ListDeprecations(first);
        Assert.Contains("io.containerd.deprecation/cri-registry-mirrors", before.Keys);
        Assert.Contains("io.containerd.deprecation/config-version-2", before.Keys);
        await first.StopAsync();

        // Restart without the config: the recorded warnings and their last occurrence remain.
        await using var second = await HulldProcess.StartInAsync(first.Dir, null);
        var after = await ListDeprecations(second);
        Assert.Equal(before["io.containerd.deprecation/cri-registry-mirrors"], after["io.containerd.deprecation/cri-registry-mirrors"]);
    }

    [E2EFact]
    public Task A_config_that_does_not_parse_stops_hulld_before_it_touches_anything_pointing_at_the_line() =>
        AssertRefusedAsync("version = 3\n[grpc]\naddress = \n", ":3:");

    [E2EFact]
    public Task A_config_with_the_wrong_type_stops_hulld_naming_the_key_and_type() =>
        AssertRefusedAsync("version = 3\n[grpc]\nmax_recv_message_size = 'big'\n", "max_recv_message_size");

    [E2EFact]
    public Task A_config_naming_an_unknown_plugin_stops_hulld() =>
        AssertRefusedAsync("version = 3\n[plugins.'io.example.v1.nope']\nx = 1\n", "io.example.v1.nope");

    private static async Task AssertRefusedAsync(string toml, string expectedInMessage)
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-config-").FullName;
        try
        {
            var path = Path.Combine(dir, "config.toml");
            await File.WriteAllTextAsync(path, toml);
            var socket = Path.Combine(dir, "hull.sock");
            var run = await Hulld("--config", path, "--address", socket, "--root", Path.Combine(dir, "root"), "--state", Path.Combine(dir, "state"));
            Assert.NotEqual(0, run.ExitCode);
            Assert.Contains(path, run.Stdout + run.Stderr);
            Assert.Contains(expectedInMessage, run.Stdout + run.Stderr);
            Assert.False(Directory.Exists(Path.Combine(dir, "root")), "hulld must not create its root before the config is valid");
            Assert.False(File.Exists(socket));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [E2EFact]
    public async Task Unknown_keys_warn_with_a_suggestion_and_are_fatal_with_strict_config()
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-config-").FullName;
        try
        {
            var path = Path.Combine(dir, "config.toml");
            await File.WriteAllTextAsync(path, "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\nbin_dir_s = ['/opt/cni/bin']\n");
            var check = await Hulld("config", "check", "--config", path);
            Assert.Equal(0, check.ExitCode);
            Assert.Contains("bin_dir_s", check.Stdout + check.Stderr);
            Assert.Contains("bin_dirs", check.Stdout + check.Stderr);
            var strict = await Hulld("config", "check", "--config", path, "--strict-config");
            Assert.NotEqual(0, strict.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<Dictionary<string, string>> ListDeprecations(HulldProcess hulld)
    {
        var list = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["-a", hulld.Socket, "deprecations", "list", "--format", "json"]);
        Assert.True(list.ExitCode == 0, list.ToString());
        return JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray()
            .ToDictionary(w => w.GetProperty("id").GetString()!, w => w.GetProperty("lastOccurrence").GetString()!);
    }
}
