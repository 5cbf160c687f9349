using Hull.Config.Schema;
using Tomlyn.Model;
using static Hull.Config.ConfigDiagnosticKind;

namespace Hull.Config.Tests.Config;

/// <summary>Version 1 and 2 files are split the way containerd 2.x's ConfigMigration functions split them.</summary>
public class MigrationTests
{
    private const string EveryMovedKey = """
        version = 2
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "registry.example/pause:3.9"
          max_concurrent_downloads = 7
          image_pull_progress_timeout = "2m"
          image_pull_with_sync_fs = true
          stats_collect_period = 20
          disable_tcp_service = true
          stream_server_address = "10.0.0.1"
          stream_server_port = "10010"
          stream_idle_timeout = "30m"
          enable_tls_streaming = true
          enable_selinux = true
          max_container_log_line_size = 8192
          systemd_cgroup = false
          [plugins."io.containerd.grpc.v1.cri".x509_key_pair_streaming]
            tls_cert_file = "/etc/hull/stream.crt"
            tls_key_file = "/etc/hull/stream.key"
          [plugins."io.containerd.grpc.v1.cri".containerd]
            default_runtime_name = "crun"
            snapshotter = "overlayfs"
            disable_snapshot_annotations = false
            discard_unpacked_layers = true
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
              runtime_type = "io.containerd.runc.v2"
              sandbox_mode = "podsandbox"
              [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
                BinaryName = "crun"
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "/usr/libexec/cni"
            max_conf_num = 2
          [plugins."io.containerd.grpc.v1.cri".registry]
            config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
          [plugins."io.containerd.grpc.v1.cri".image_decryption]
            key_model = "node"
        """;

    [Fact]
    public void Version_2_cri_section_is_split_into_images_runtime_and_server()
    {
        var result = ConfigLoader.LoadText(EveryMovedKey, "config.toml");
        var c = result.Config;

        // images
        Assert.Equal("registry.example/pause:3.9", c.Images.PinnedSandboxImage);
        Assert.Equal(7, c.Images.MaxConcurrentDownloads);
        Assert.Equal(TimeSpan.FromMinutes(2), c.Images.ImagePullProgressTimeout);
        Assert.True(c.Images.ImagePullWithSyncFs);
        Assert.Equal(20, c.Images.StatsCollectPeriod);
        Assert.Equal("overlayfs", c.Images.Snapshotter);
        Assert.False(c.Images.DisableSnapshotAnnotations);
        Assert.True(c.Images.DiscardUnpackedLayers);
        Assert.Equal("/etc/containerd/certs.d:/etc/docker/certs.d", c.Images.RegistryConfigPath);
        // server
        Assert.Equal("10.0.0.1", c.Server.StreamServerAddress);
        Assert.Equal("10010", c.Server.StreamServerPort);
        Assert.Equal(TimeSpan.FromMinutes(30), c.Server.StreamIdleTimeout);
        Assert.True(c.Server.EnableTlsStreaming);
        Assert.Equal(("/etc/hull/stream.crt", "/etc/hull/stream.key"), (c.Server.TlsCertFile, c.Server.TlsKeyFile));
        // runtime
        Assert.True(c.Runtime.EnableSelinux);
        Assert.Equal(8192, c.Runtime.MaxContainerLogLineSize);
        Assert.Equal("crun", c.Runtime.DefaultRuntimeName);
        Assert.Equal(("crun", "podsandbox"), (c.Runtime.Runtimes["crun"].BinaryName, c.Runtime.Runtimes["crun"].Sandboxer));
        Assert.Equal(["/usr/libexec/cni"], c.Runtime.Cni.BinDirs);
        Assert.Equal(2, c.Runtime.Cni.MaxConfNum);

        Assert.Equal([ConfigMigrationNotice, Deprecated, Deprecated], result.Diagnostics.Select(d => d.Kind));
        Assert.Equal([ConfigDeprecations.SandboxImage, ConfigDeprecations.CriCniBinDir, ConfigDeprecations.ConfigVersion2], result.DeprecationIds);
    }

    [Fact]
    public void Migrate_prints_the_version_3_file_containerd_would_write()
    {
        using var file = TestFiles.Write(EveryMovedKey);
        var output = ConfigCommandsLogic.Migrate(file.Path);
        Assert.Equal(0, output.ExitCode);

        var v3 = ConfigDocument.Parse(output.Stdout).Root;
        Assert.Equal("version", v3.Keys.First());
        Assert.Equal(3L, v3["version"]);
        var plugins = (TomlTable)v3["plugins"];
        Assert.Equal([ConfigSchema.ImagesPlugin, ConfigSchema.RuntimePlugin, ConfigSchema.ServerPlugin], plugins.Keys);

        var images = (TomlTable)plugins[ConfigSchema.ImagesPlugin];
        Assert.Equal("registry.example/pause:3.9", ((TomlTable)images["pinned_images"])["sandbox"]);
        Assert.Equal("overlayfs", images["snapshotter"]);
        Assert.Equal(7L, images["max_concurrent_downloads"]);
        Assert.Equal("/etc/containerd/certs.d:/etc/docker/certs.d", ((TomlTable)images["registry"])["config_path"]);
        Assert.True(images.ContainsKey("image_decryption"));

        var server = (TomlTable)plugins[ConfigSchema.ServerPlugin];
        Assert.Equal(["disable_tcp_service", "stream_server_address", "stream_server_port", "stream_idle_timeout", "enable_tls_streaming", "x509_key_pair_streaming"],
            server.Keys);

        var runtime = (TomlTable)plugins[ConfigSchema.RuntimePlugin];
        Assert.Equal(["enable_selinux", "max_container_log_line_size", "containerd", "cni"], runtime.Keys); // systemd_cgroup (removed) is left out
        var containerd = (TomlTable)runtime["containerd"];
        Assert.Equal(["default_runtime_name", "runtimes"], containerd.Keys);
        var crun = (TomlTable)((TomlTable)containerd["runtimes"])["crun"];
        Assert.Equal("podsandbox", crun["sandboxer"]);
        Assert.False(crun.ContainsKey("sandbox_mode"));
        var cni = (TomlTable)runtime["cni"];
        Assert.Equal(new TomlArray { "/usr/libexec/cni" }, cni["bin_dirs"], new TomlArrayComparer());
        Assert.False(cni.ContainsKey("bin_dir"));

        Assert.Contains("config version 2 is migrated", output.Stderr);
    }

    [Fact]
    public void Registry_settings_migrate_without_a_containerd_table()
    {
        // containerd issue #10120: registry and sandbox_image were not migrated when `containerd` was absent.
        var result = ConfigLoader.LoadText("""
            version = 2
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "rancher/mirrored-pause:3.9-amd64"
            [plugins."io.containerd.grpc.v1.cri".registry]
              config_path = "/etc/containerd/certs.d"
            """);

        Assert.Equal("rancher/mirrored-pause:3.9-amd64", result.Config.Images.PinnedSandboxImage);
        Assert.Equal("/etc/containerd/certs.d", result.Config.Images.RegistryConfigPath);
    }

    [Fact]
    public void Version_1_short_plugin_names_become_full_ids()
    {
        using var file = TestFiles.Write("""
            disabled_plugins = ["cri", "io.containerd.snapshotter.v1.btrfs", "restart"]
            [plugins.cri.containerd]
              snapshotter = "overlayfs"
            [plugins.cri.cni]
              conf_dir = "/etc/cni/conf.d"
            [plugins.overlayfs]
              root_path = "/data/overlay"
            [plugins.diff-service]
              default = ["walking"]
            [plugins.mystery]
              x = 1
            """);

        var result = ConfigLoader.LoadFile(file.Path);

        Assert.Equal(1, result.SourceVersion);
        Assert.Equal("/etc/cni/conf.d", result.Config.Runtime.Cni.ConfDir);
        Assert.Equal("/data/overlay", result.Config.Overlayfs.RootPath);
        var ambiguous = Assert.Single(result.Diagnostics, d => d.Message.StartsWith("ambiguous plugin", StringComparison.Ordinal));
        Assert.Equal("ambiguous plugin `plugins.mystery` in a version 1 config, treated as \"io.containerd.grpc.v1.mystery\"", ambiguous.Message);
        var unknown = Assert.Single(result.Diagnostics, d => d.Kind == UnknownPlugin);
        Assert.Equal("plugins.mystery", unknown.KeyPath);
        Assert.Equal(10, unknown.Line);
        var ignored = Assert.Single(result.Diagnostics, d => d.Kind == IgnoredPlugins);
        Assert.Contains("io.containerd.service.v1.diff-service (line 8)", ignored.Message);
        // disabled_plugins keeps its meaning for containerd: names are rewritten, and Hull says it ignores them.
        Assert.Single(result.Diagnostics, d => d.Kind == UnusedKey && d.KeyPath == "disabled_plugins");

        var migrated = ConfigDocument.Parse(ConfigCommandsLogic.Migrate(file.Path).Stdout).Root;
        Assert.Equal(new TomlArray { "io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.internal.v1.restart" },
            migrated["disabled_plugins"], new TomlArrayComparer());
        Assert.Equal(
            [ConfigSchema.ImagesPlugin, ConfigSchema.RuntimePlugin, "io.containerd.grpc.v1.mystery", "io.containerd.service.v1.diff-service", ConfigSchema.OverlayfsPlugin],
            ((TomlTable)migrated["plugins"]).Keys);
    }

    [Fact]
    public void A_file_without_version_but_with_full_plugin_ids_is_version_1_and_still_works()
    {
        var result = ConfigLoader.LoadText("""
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
              SystemdCgroup = true
            """);

        Assert.Equal(1, result.SourceVersion);
        Assert.True(result.Config.Runtime.Runtimes["runc"].SystemdCgroup);
        Assert.Equal([ConfigMigrationNotice], result.Diagnostics.Select(d => d.Kind));
    }

    [Fact]
    public void Version_0_is_read_as_version_1() =>
        Assert.Equal(1, ConfigLoader.LoadText("version = 0\n").SourceVersion);

    [Fact]
    public void Migration_notice_says_how_to_migrate_for_good()
    {
        var result = ConfigLoader.LoadText("version = 2\n", "/etc/hull/config.toml");

        var notice = Assert.Single(result.Diagnostics);
        Assert.Equal((ConfigMigrationNotice, DiagnosticSeverity.Warning), (notice.Kind, notice.Severity));
        Assert.Contains("run `hulld config migrate --config /etc/hull/config.toml > new.toml`", notice.Message);
        Assert.Equal((1, 1), (notice.Line, notice.Column));
        Assert.True(result.WasMigrated);
    }

    [Fact]
    public void The_file_on_disk_is_left_alone()
    {
        string path = TestFiles.TestData("v2-registry-mirrors.toml");
        byte[] before = File.ReadAllBytes(path);

        ConfigLoader.LoadFile(path);
        ConfigCommandsLogic.Migrate(path);

        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void Migrating_a_version_3_file_says_it_already_is_and_keeps_unknown_keys()
    {
        using var file = TestFiles.Write("""
            version = 3
            [plugins.'io.containerd.cri.v1.runtime']
            typo_key = 1
            systemd_cgroup = true
            """);

        var output = ConfigCommandsLogic.Migrate(file.Path);

        Assert.Equal(0, output.ExitCode);
        Assert.Contains("is already version 3", output.Stderr);
        var runtime = (TomlTable)((TomlTable)ConfigDocument.Parse(output.Stdout).Root["plugins"])[ConfigSchema.RuntimePlugin];
        Assert.Equal(["typo_key"], runtime.Keys);
    }

    [Fact]
    public void Migrating_an_unusable_version_prints_nothing_and_fails()
    {
        using var file = TestFiles.Write("version = 9\n");

        var output = ConfigCommandsLogic.Migrate(file.Path);

        Assert.Equal((1, ""), (output.ExitCode, output.Stdout));
        Assert.Contains("config version 9 is not supported", output.Stderr);
    }

    private sealed class TomlArrayComparer : IEqualityComparer<object>
    {
        public new bool Equals(object? x, object? y) => x is TomlArray a && y is TomlArray b && a.SequenceEqual(b);

        public int GetHashCode(object obj) => 0;
    }
}
