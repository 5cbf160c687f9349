using Hull.Config.Schema;
using Tomlyn.Model;

namespace Hull.Config.Tests.Config;

public class ConfigCommandsLogicTests
{
    [Fact]
    public void Default_prints_a_version_3_file_of_the_defaults()
    {
        var output = ConfigCommandsLogic.Default();

        Assert.Equal((0, ""), (output.ExitCode, output.Stderr));
        Assert.StartsWith("# Hull configuration: the defaults", output.Stdout);
        Assert.Contains("\nversion = 3\n", output.Stdout);
        Assert.Contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]", output.Stdout);
        Assert.Contains("stream_idle_timeout = \"4h0m0s\"", output.Stdout);
    }

    [Fact]
    public void Dump_prints_the_effective_config_after_migration_and_overrides()
    {
        string path = TestFiles.TestData("v2-kubeadm-systemd.toml");
        var output = ConfigCommandsLogic.Dump(path, overrides: new ConfigOverrides(Root: "/data/hull", LogLevel: "debug"));

        Assert.Equal(0, output.ExitCode);
        Assert.Contains("config version 2 is migrated", output.Stderr);
        var dumped = ConfigLoader.Load(ConfigDocument.Parse(output.Stdout, "dump.toml"));
        Assert.Empty(dumped.Diagnostics);
        Assert.Equal("/data/hull", dumped.Config.Root);
        Assert.Equal("debug", dumped.Config.Debug.Level);
        Assert.True(dumped.Config.Runtime.Runtimes["runc"].SystemdCgroup);
        Assert.Equal("registry.k8s.io/pause:3.10", dumped.Config.Images.PinnedSandboxImage);
    }

    [Fact]
    public void Dump_of_a_file_with_errors_still_prints_and_fails()
    {
        string path = TestFiles.TestData("v2-legacy-runtimes.toml");
        var output = ConfigCommandsLogic.Dump(path);

        Assert.Equal(1, output.ExitCode);
        Assert.Contains("snapshotter = \"aufs\"", output.Stdout);
        Assert.Contains("error: " + path + ":9:5: ", output.Stderr);
    }

    [Fact]
    public void Check_says_OK_with_the_warning_count_and_deprecations()
    {
        var output = ConfigCommandsLogic.Check(TestFiles.TestData("containerd-2.0-default.toml"));

        Assert.Equal(0, output.ExitCode);
        Assert.Equal($"{TestFiles.TestData("containerd-2.0-default.toml")}: config OK (2 warnings)\ndeprecations: {ConfigDeprecations.CriCniBinDir}\n", output.Stdout);
        Assert.Equal(2, output.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.All(output.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.StartsWith("warning: ", line));
    }

    [Fact]
    public void Check_fails_on_errors_and_in_strict_mode_on_unknown_keys()
    {
        using var file = TestFiles.Write("version = 3\n[grpc]\nadress = \"/run/hull.sock\"\n");

        var lenient = ConfigCommandsLogic.Check(file.Path);
        Assert.Equal(0, lenient.ExitCode);
        Assert.Contains("did you mean `address`?", lenient.Stderr);

        var strict = ConfigCommandsLogic.Check(file.Path, strict: true);
        Assert.Equal(1, strict.ExitCode);
        Assert.Equal($"{file.Path}: config has 1 error and 0 warnings; hulld will not start with it\n", strict.Stdout);
        Assert.StartsWith($"error: {file.Path}:3:1: unknown key `grpc.adress`", strict.Stderr);
    }

    [Fact]
    public void Commands_report_unreadable_files_as_errors()
    {
        foreach (var output in new[] { ConfigCommandsLogic.Check("/nonexistent.toml"), ConfigCommandsLogic.Dump("/nonexistent.toml"), ConfigCommandsLogic.Migrate("/nonexistent.toml") })
        {
            Assert.Equal((1, ""), (output.ExitCode, output.Stdout));
            Assert.Equal("error: /nonexistent.toml: cannot read config file: no such file\n", output.Stderr);
        }
    }

    [Fact]
    public void Without_a_file_commands_use_the_embedded_defaults()
    {
        if (File.Exists(Defaults.ConfigPath))
        {
            return; // a real node config is installed; the defaults are not what check reads then
        }

        var check = ConfigCommandsLogic.Check(null);
        Assert.Equal((0, "embedded defaults: config OK\n", ""), (check.ExitCode, check.Stdout, check.Stderr));
        Assert.Equal(ConfigWriter.Write(new HullConfig()), string.Join('\n', ConfigCommandsLogic.Dump(null).Stdout.Split('\n').Skip(1)));
        Assert.Contains("--config FILE", ConfigCommandsLogic.Migrate(null).Stderr);
    }

    [Fact]
    public void Overrides_apply_only_what_was_given()
    {
        var config = new ConfigOverrides(Address: "/run/x.sock").ApplyTo(new HullConfig());

        Assert.Equal("/run/x.sock", config.Grpc.Address);
        Assert.Equal(Defaults.Root, config.Root);
        Assert.Equal("info", config.Debug.Level);
    }
}
