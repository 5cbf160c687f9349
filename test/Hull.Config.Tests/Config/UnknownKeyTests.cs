using static Hull.Config.ConfigDiagnosticKind;

namespace Hull.Config.Tests.Config;

public class UnknownKeyTests
{
    private static ConfigLoadResult Load(string toml, bool forceStrict = false) => ConfigLoader.LoadText(toml, "config.toml", forceStrict);

    [Fact]
    public void Unknown_key_is_reported_with_full_path_position_and_suggestion()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.cni]
              bin_dirz = ["/opt/cni/bin"]
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(UnknownKey, d.Kind);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal("plugins.\"io.containerd.cri.v1.runtime\".cni.bin_dirz", d.KeyPath);
        Assert.Equal((3, 3), (d.Line, d.Column));
        Assert.Equal("config.toml:3:3: unknown key `plugins.\"io.containerd.cri.v1.runtime\".cni.bin_dirz`; did you mean `bin_dirs`?", d.ToString());
        Assert.False(result.HasErrors);
        Assert.Equal(["/opt/cni/bin"], result.Config.Runtime.Cni.BinDirs); // the unknown key changed nothing
    }

    [Theory]
    [InlineData("roots = \"/x\"", "roots", "root")]
    [InlineData("[grpc]\nadress = \"/x\"", "grpc.adress", "address")]
    [InlineData("[debug]\nlevle = \"info\"", "debug.levle", "level")]
    [InlineData("[plugins.'io.containerd.cri.v1.images']\nsnapshoter = \"overlayfs\"", "plugins.\"io.containerd.cri.v1.images\".snapshoter", "snapshotter")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime = \"runc\"", null, null)]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nruntime_typ = \"x\"", "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.runtime_typ", "runtime_type")]
    [InlineData("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\nSystemdCgroups = true", "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options.SystemdCgroups", "SystemdCgroup")]
    [InlineData("[plugins.'io.containerd.nri.v1.nri']\nplugin_pth = \"/x\"", "plugins.\"io.containerd.nri.v1.nri\".plugin_pth", "plugin_path")]
    [InlineData("[[plugins.'io.containerd.transfer.v1.local'.unpack_config]]\nplatfrom = \"linux/amd64\"", "plugins.\"io.containerd.transfer.v1.local\".unpack_config[0].platfrom", "platform")]
    public void Suggests_the_closest_known_key(string body, string? path, string? suggestion)
    {
        var result = Load("version = 3\n" + body);
        if (path is null)
        {
            // default_runtime is a removed containerd 1.x key, not an unknown one.
            Assert.Equal(RemovedKey, Assert.Single(result.Diagnostics).Kind);
            return;
        }

        var d = Assert.Single(result.Diagnostics, d => d.Kind == UnknownKey);
        Assert.Equal(path, d.KeyPath);
        Assert.EndsWith($"did you mean `{suggestion}`?", d.Message);
        Assert.Equal(body.Count(c => c == '\n') + 2, d.Line); // the key's own line, after "version = 3"
        Assert.Equal(1, d.Column);
    }

    [Fact]
    public void A_key_that_belongs_to_another_section_says_where_it_belongs()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime']
            max_concurrent_uploaded_layers = 3
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Contains("is known as `plugins.\"io.containerd.transfer.v1.local\".max_concurrent_uploaded_layers`", d.Message);
    }

    [Fact]
    public void Version_2_keys_in_a_version_3_file_point_at_their_new_place()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.grpc.v1.cri']
            sandbox_image = "registry.k8s.io/pause:3.10"
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(UnknownKey, d.Kind);
        Assert.Contains("`pinned_images.sandbox` of [plugins.\"io.containerd.cri.v1.images\"]", d.Message);
    }

    [Fact]
    public void Typos_in_a_migrated_version_2_file_are_reported_at_the_line_written_with_the_version_2_path()
    {
        var result = Load("""
            version = 2
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_imag = "registry.k8s.io/pause:3.9"
              [plugins."io.containerd.grpc.v1.cri".cni]
                conf_dri = "/etc/cni/net.d"
            """);

        var unknown = result.Diagnostics.Where(d => d.Kind == UnknownKey).ToList();
        Assert.Equal(2, unknown.Count);
        Assert.Equal("plugins.\"io.containerd.grpc.v1.cri\".sandbox_imag", unknown[0].KeyPath);
        Assert.Equal((3, 3), (unknown[0].Line, unknown[0].Column));
        Assert.EndsWith("did you mean `sandbox_image`?", unknown[0].Message);
        Assert.Equal("plugins.\"io.containerd.grpc.v1.cri\".cni.conf_dri", unknown[1].KeyPath);
        Assert.Equal((5, 5), (unknown[1].Line, unknown[1].Column));
        Assert.EndsWith("did you mean `conf_dir`?", unknown[1].Message);
    }

    [Fact]
    public void Strict_true_makes_unknown_keys_errors()
    {
        var result = Load("""
            version = 3
            typo = 1
            strict = true
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(UnknownKey, d.Kind);
        Assert.Contains("fatal in strict mode", d.Message);
        Assert.True(result.HasErrors);
        Assert.True(result.Config.Strict);
    }

    [Fact]
    public void Force_strict_makes_unknown_keys_errors()
    {
        const string toml = """
            version = 3
            typo = 1
            """;

        Assert.False(Load(toml).HasErrors);
        var strict = Load(toml, forceStrict: true);
        Assert.True(strict.HasErrors);
        var d = Assert.Single(strict.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Error, UnknownKey), (d.Severity, d.Kind));
    }

    [Fact]
    public void A_plugin_neither_Hull_nor_containerd_has_is_always_an_error()
    {
        const string toml = """
            version = 3
            [plugins.'io.containerd.foo.v1.bar']
            x = 1
            """;

        foreach (var strict in new[] { false, true })
        {
            var result = Load(toml, forceStrict: strict);
            Assert.True(result.HasErrors);
            var d = Assert.Single(result.Diagnostics);
            Assert.Equal((DiagnosticSeverity.Error, UnknownPlugin), (d.Severity, d.Kind));
            Assert.DoesNotContain("strict", d.Message);
        }
    }

    [Fact]
    public void Strict_mode_keeps_ignored_and_removed_containerd_settings_as_warnings()
    {
        var result = Load("""
            version = 3
            strict = true
            oom_score = -999
            [plugins.'io.containerd.cri.v1.runtime']
            systemd_cgroup = true
            [plugins.'io.containerd.gc.v1.scheduler']
            pause_threshold = 0.02
            """);

        Assert.False(result.HasErrors);
        Assert.Equal([UnusedKey, RemovedKey, IgnoredPlugins], result.Diagnostics.Select(d => d.Kind));
    }

    [Fact]
    public void Unknown_plugin_is_reported_with_the_closest_plugin_id()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtimes']
            enable_selinux = true
            [plugins.'io.containerd.foo.v1.bar']
            x = 1
            """);

        Assert.Equal(2, result.Diagnostics.Count);
        var typo = result.Diagnostics[0];
        Assert.Equal(UnknownPlugin, typo.Kind);
        Assert.Equal((2, 10), (typo.Line, typo.Column));
        Assert.Contains("unknown plugin `plugins.\"io.containerd.cri.v1.runtimes\"`", typo.Message);
        Assert.EndsWith("did you mean \"io.containerd.cri.v1.runtime\"?", typo.Message);
        var foo = result.Diagnostics[1];
        Assert.Equal(UnknownPlugin, foo.Kind);
        Assert.DoesNotContain("did you mean", foo.Message);
        Assert.False(result.Config.Runtime.EnableSelinux);
    }

    [Fact]
    public void Containerd_plugins_Hull_does_not_have_are_listed_in_one_warning()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.gc.v1.scheduler']
            pause_threshold = 0.02
            [plugins.'io.containerd.metadata.v1.bolt']
            content_sharing_policy = 'shared'
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(IgnoredPlugins, d.Kind);
        Assert.Equal(2, d.Line);
        Assert.Contains("io.containerd.gc.v1.scheduler (line 2), io.containerd.metadata.v1.bolt (line 4)", d.Message);
    }

    [Fact]
    public void Keys_that_differ_only_in_case_are_used_with_a_warning()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            systemdCgroup = true
            """);

        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(KeyCase, d.Kind);
        Assert.Contains("write it as `SystemdCgroup`", d.Message);
        Assert.True(result.Config.Runtime.Runtimes["runc"].SystemdCgroup);
    }

    [Fact]
    public void Runtime_options_of_runc_are_checked_but_those_of_other_shims_pass_through()
    {
        var result = Load("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryNam = "crun"
            NoNewKeyring = true
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]
            runtime_type = "io.containerd.kata.v2"
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata.options]
            ConfigPath = "/opt/kata/configuration.toml"
            """);

        Assert.Equal([UnknownKey, UnusedKey, InvalidValue, UnusedKey], result.Diagnostics.Select(d => d.Kind));
        Assert.EndsWith("did you mean `BinaryName`?", result.Diagnostics[0].Message);
        Assert.Contains("`plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options.NoNewKeyring` is a containerd setting Hull does not use", result.Diagnostics[1].Message);
        Assert.Contains("is a containerd shim Hull cannot start", result.Diagnostics[2].Message);
        Assert.Contains("options.ConfigPath` is passed to the runtime by containerd and is not used by Hull", result.Diagnostics[3].Message);
    }

    [Fact]
    public void Ignored_containerd_settings_at_their_default_are_silent()
    {
        var result = Load("""
            version = 3
            oom_score = 0
            disabled_plugins = []
            [grpc]
            tcp_address = ""
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
            io_type = ""
            [plugins.'io.containerd.cri.v1.images'.image_decryption]
            key_model = "node"
            [plugins.'io.containerd.cri.v1.images'.registry.mirrors]
            [timeouts]
            "io.containerd.timeout.shim.cleanup" = "5s"
            """);

        Assert.Empty(result.Diagnostics);
    }

    [Fact]
    public void Ignored_containerd_settings_set_to_something_else_say_so()
    {
        var result = Load("""
            version = 3
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            imports = ["/etc/containerd/conf.d/*.toml"]
            """);

        Assert.Equal([UnusedKey, UnusedKey], result.Diagnostics.Select(d => d.Kind));
        Assert.Contains("`disabled_plugins` is a containerd setting Hull does not use", result.Diagnostics[0].Message);
        Assert.Contains("merge them into it", result.Diagnostics[1].Message);
    }
}
