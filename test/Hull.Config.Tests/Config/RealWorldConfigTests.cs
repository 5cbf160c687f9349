using Hull.Config.Schema;
using Tomlyn.Model;
using static Hull.Config.ConfigDiagnosticKind;

namespace Hull.Config.Tests.Config;

/// <summary>Real-world containerd configs (testdata/*.toml): what Hull makes of them after migration.</summary>
public class RealWorldConfigTests
{
    private sealed record Expectation(int Version, string[] Deprecations, ConfigDiagnosticKind[] Warnings, ConfigDiagnosticKind[] Errors, Action<HullConfig> Check);

    private static readonly Dictionary<string, Expectation> Cases = new()
    {
        ["containerd-1.6-default.toml"] = new(2,
            [ConfigDeprecations.ConfigVersion2, ConfigDeprecations.SandboxImage, ConfigDeprecations.CriCniBinDir],
            [ConfigMigrationNotice, IgnoredPlugins, Deprecated, Deprecated], [],
            c =>
            {
                Assert.Equal("/var/lib/containerd", c.Root);
                Assert.Equal("/run/containerd", c.State);
                Assert.Equal("/run/containerd/containerd.sock", c.Grpc.Address);
                Assert.Equal(16 << 20, c.Grpc.MaxRecvMessageSize);
                Assert.Equal("info", c.Debug.Level); // level = "" means info
                Assert.Equal("runc", c.Runtime.DefaultRuntimeName);
                var runc = Assert.Single(c.Runtime.Runtimes);
                Assert.Equal("runc", runc.Key);
                Assert.Equal("io.containerd.runc.v2", runc.Value.RuntimeType);
                Assert.Equal("podsandbox", runc.Value.Sandboxer);
                Assert.False(runc.Value.SystemdCgroup);
                Assert.Equal(["/opt/cni/bin"], c.Runtime.Cni.BinDirs);
                Assert.Equal("/etc/cni/net.d", c.Runtime.Cni.ConfDir);
                Assert.False(c.Runtime.EnableUnprivilegedPorts); // 1.6 default, unlike 2.x
                Assert.False(c.Runtime.EnableUnprivilegedIcmp);
                Assert.Equal("registry.k8s.io/pause:3.6", c.Images.PinnedSandboxImage);
                Assert.Equal("overlayfs", c.Images.Snapshotter);
                Assert.True(c.Images.DisableSnapshotAnnotations);
                Assert.Equal(3, c.Images.MaxConcurrentDownloads);
                Assert.Equal(10, c.Images.StatsCollectPeriod);
                Assert.Equal(TimeSpan.FromMinutes(5), c.Images.ImagePullProgressTimeout); // not in 1.6: the default
                Assert.Equal("127.0.0.1", c.Server.StreamServerAddress);
                Assert.Equal("0", c.Server.StreamServerPort);
                Assert.Equal(TimeSpan.FromHours(4), c.Server.StreamIdleTimeout);
            }),

        ["containerd-2.0-default.toml"] = new(3,
            [ConfigDeprecations.CriCniBinDir],
            [Deprecated, IgnoredPlugins], [],
            c =>
            {
                Assert.Equal("/var/lib/containerd", c.Root);
                Assert.Equal("registry.k8s.io/pause:3.10", c.Images.PinnedSandboxImage);
                Assert.True(c.Runtime.EnableUnprivilegedPorts);
                Assert.True(c.Runtime.EnableCdi);
                Assert.Equal(["/etc/cdi", "/var/run/cdi"], c.Runtime.CdiSpecDirs);
                Assert.Equal(TimeSpan.Zero, c.Runtime.DrainExecSyncIoTimeout);
                Assert.Equal(["/opt/cni/bin"], c.Runtime.Cni.BinDirs);
                Assert.Equal("podsandbox", c.Runtime.Runtimes["runc"].Sandboxer);
                Assert.Equal(TimeSpan.FromSeconds(5), c.Nri.PluginRegistrationTimeout);
                Assert.Equal(TimeSpan.FromSeconds(2), c.Nri.PluginRequestTimeout);
                Assert.Equal("/var/run/nri/nri.sock", c.Nri.SocketPath);
                Assert.Equal(TimeSpan.FromSeconds(10), c.ImageVerifier.PerVerifierTimeout);
                Assert.Equal("/opt/containerd/image-verifier/bin", c.ImageVerifier.BinDir);
                Assert.Equal(3, c.Transfer.MaxConcurrentUploadedLayers);
                Assert.Empty(c.Transfer.UnpackConfig);
                Assert.False(c.Overlayfs.SlowChown);
                Assert.Equal(TimeSpan.FromHours(4), c.Server.StreamIdleTimeout);
            }),

        ["v2-registry-mirrors.toml"] = new(2,
            [ConfigDeprecations.ConfigVersion2, ConfigDeprecations.SandboxImage, ConfigDeprecations.CriRegistryMirrors,
                ConfigDeprecations.CriRegistryConfigs, ConfigDeprecations.CriCniBinDir],
            [ConfigMigrationNotice, UnusedKey, Deprecated, UnusedKey, UnusedKey, Deprecated], [],
            c =>
            {
                Assert.Equal("127.0.0.1:1338", c.Metrics.Address);
                Assert.Equal(-1, c.Runtime.MaxContainerLogLineSize);
                Assert.False(c.Runtime.EnableUnprivilegedPorts);
                Assert.Equal("registry.k8s.io/pause:3.9", c.Images.PinnedSandboxImage);
                Assert.Equal(10, c.Images.MaxConcurrentDownloads);
                Assert.Equal(TimeSpan.FromMinutes(10), c.Images.ImagePullProgressTimeout);
                Assert.True(c.Images.DiscardUnpackedLayers);
                Assert.Equal("", c.Images.RegistryConfigPath);
                Assert.Equal("/usr/bin/runc", c.Runtime.Runtimes["runc"].BinaryName);
                Assert.True(c.Runtime.Runtimes["runc"].SystemdCgroup);
            }),

        ["v1-containerd-1.2.toml"] = new(1,
            [ConfigDeprecations.ConfigVersion1, ConfigDeprecations.SandboxImage, ConfigDeprecations.RuntimeV1,
                ConfigDeprecations.CriCniBinDir, ConfigDeprecations.CriRegistryMirrors],
            [ConfigMigrationNotice, UnusedKey, Deprecated, RemovedKey, RemovedKey, Deprecated, RemovedKey, Deprecated, Deprecated, UnusedKey, IgnoredPlugins], [],
            c =>
            {
                Assert.Equal("/run/containerd/containerd.sock", c.Grpc.Address);
                Assert.Equal("warn", c.Debug.Level);
                Assert.Equal("0.0.0.0", c.Server.StreamServerAddress);
                Assert.Equal("10010", c.Server.StreamServerPort);
                Assert.Equal("k8s.gcr.io/pause:3.1", c.Images.PinnedSandboxImage);
                Assert.Equal("overlayfs", c.Images.Snapshotter);
                // default_runtime and systemd_cgroup were removed in containerd 2.0: the default runc handler stays.
                var runc = Assert.Single(c.Runtime.Runtimes).Value;
                Assert.Equal("io.containerd.runc.v2", runc.RuntimeType);
                Assert.False(runc.SystemdCgroup);
                Assert.Equal(["/opt/cni/bin"], c.Runtime.Cni.BinDirs);
            }),

        ["v2-kubeadm-systemd.toml"] = new(2,
            [ConfigDeprecations.ConfigVersion2, ConfigDeprecations.SandboxImage, ConfigDeprecations.CriCniBinDir],
            [ConfigMigrationNotice, Deprecated, Deprecated], [],
            c =>
            {
                Assert.Equal(Defaults.Root, c.Root);
                Assert.Equal(Defaults.Address, c.Grpc.Address);
                Assert.Equal(["crun", "runc"], c.Runtime.Runtimes.Keys.Order());
                var runc = c.Runtime.Runtimes["runc"];
                Assert.True(runc.SystemdCgroup);
                Assert.Equal("podsandbox", runc.Sandboxer); // from sandbox_mode
                var crun = c.Runtime.Runtimes["crun"];
                Assert.Equal("/usr/local/bin/crun", crun.BinaryName);
                Assert.True(crun.SystemdCgroup);
                Assert.Equal("io.containerd.runc.v2", crun.RuntimeType);
                Assert.Equal(["io.kubernetes.cri-o.*"], crun.PodAnnotations);
                Assert.Equal("/etc/containerd/certs.d", c.Images.RegistryConfigPath);
                Assert.Equal("registry.k8s.io/pause:3.10", c.Images.PinnedSandboxImage);
                Assert.Equal("/etc/containerd/stream.crt", c.Server.TlsCertFile);
                Assert.Equal("/etc/containerd/stream.key", c.Server.TlsKeyFile);
                Assert.True(c.Runtime.EnableCdi);
            }),

        ["v2-large-node.toml"] = new(2,
            [ConfigDeprecations.ConfigVersion2, ConfigDeprecations.SandboxImage, ConfigDeprecations.CriCniBinDir,
                ConfigDeprecations.CriRegistryMirrors, ConfigDeprecations.CriRegistryConfigs],
            [ConfigMigrationNotice, UnusedKey, UnusedKey, UnusedKey, IgnoredPlugins, Deprecated, InvalidValue, UnusedKey, UnusedKey,
                InvalidValue, UnusedKey, Deprecated, UnusedKey, UnusedKey, UnusedKey, UnusedKey],
            [],
            c =>
            {
                Assert.Equal("json", c.Debug.Format);
                Assert.Equal("/run/containerd/debug.sock", c.Debug.Address);
                Assert.Equal(["crun", "kata", "nvidia", "nvidia-restricted", "runc", "runsc"], c.Runtime.Runtimes.Keys.Order());
                Assert.True(c.Runtime.Runtimes["runc"].SystemdCgroup);
                Assert.Equal("/usr/bin/runc", c.Runtime.Runtimes["runc"].BinaryName);
                Assert.Equal("/run/crun", c.Runtime.Runtimes["crun"].Root);
                Assert.Equal(["run.oci.*"], c.Runtime.Runtimes["crun"].ContainerAnnotations);
                Assert.True(c.Runtime.Runtimes["nvidia-restricted"].PrivilegedWithoutHostDevicesAllDevicesAllowed);
                Assert.Equal("/etc/cni/kata.d", c.Runtime.Runtimes["kata"].CniConfDir);
                Assert.Equal(65536, c.Runtime.MaxContainerLogLineSize);
                Assert.True(c.Runtime.DeviceOwnershipFromSecurityContext);
                Assert.Equal(["/opt/cni/bin"], c.Runtime.Cni.BinDirs);
                Assert.Equal("ipv4", c.Runtime.Cni.IpPref);
                Assert.Equal(6, c.Images.MaxConcurrentDownloads);
                Assert.Equal("registry.k8s.io/pause:3.9", c.Images.PinnedSandboxImage);
                Assert.Equal("10010", c.Server.StreamServerPort);
                Assert.True(c.Server.EnableTlsStreaming);
                Assert.Equal("/etc/containerd/pki/stream.key", c.Server.TlsKeyFile);
                Assert.Equal("/opt/nri/plugins", c.Nri.PluginPath);
                Assert.Equal("/etc/containerd/certs.d", c.Transfer.ConfigPath);
                Assert.Equal(6, c.Transfer.MaxConcurrentDownloads);
            }),

        ["v2-legacy-runtimes.toml"] = new(2,
            [ConfigDeprecations.ConfigVersion2, ConfigDeprecations.RuntimeV1, ConfigDeprecations.RuntimeRuncV1,
                ConfigDeprecations.AufsSnapshotter, ConfigDeprecations.CriRegistryAuths],
            [ConfigMigrationNotice, RemovedKey, Deprecated, RemovedKey, RemovedKey, Deprecated, Deprecated, RemovedKey, InvalidValue, UnusedKey, UnusedKey],
            [InvalidValue],
            c =>
            {
                Assert.Equal(TimeSpan.FromMinutes(30), c.Server.StreamIdleTimeout);
                Assert.Equal("io.containerd.runc.v1", c.Runtime.Runtimes["runc"].RuntimeType);
                Assert.Equal("", c.Runtime.Runtimes["runc"].Root); // runtime_root is not options.Root
                Assert.True(c.Runtime.Runtimes["kata"].PrivilegedWithoutHostDevices);
                Assert.Equal("aufs", c.Images.Snapshotter);
            }),
    };

    public static TheoryData<string> Files => new(TestFiles.AllTestData());

    [Fact]
    public void Every_testdata_file_has_expectations() => Assert.Equal(TestFiles.AllTestData(), Cases.Keys.Order());

    [Theory]
    [MemberData(nameof(Files))]
    public void Loads_real_world_config(string file)
    {
        var expected = Cases[file];
        var result = ConfigLoader.LoadFile(TestFiles.TestData(file));

        Assert.Equal(expected.Version, result.SourceVersion);
        Assert.Equal(3, result.Config.Version);
        Assert.Equal(expected.Deprecations.Order(), result.DeprecationIds.Order());
        Assert.Equal(expected.Warnings.Order(), Kinds(result, DiagnosticSeverity.Warning).Order());
        Assert.Equal(expected.Errors.Order(), Kinds(result, DiagnosticSeverity.Error).Order());
        expected.Check(result.Config);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Diagnostics_point_at_the_file_line_and_key(string file)
    {
        string path = TestFiles.TestData(file);
        var result = ConfigLoader.LoadFile(path);
        foreach (var d in result.Diagnostics.Where(d => d.Kind != ConfigMigrationNotice || result.SourceVersion == 2))
        {
            Assert.Equal(path, d.Source);
            Assert.True(d.Line > 0, $"no line: {d}");
            Assert.True(d.Column > 0, $"no column: {d}");
            Assert.StartsWith($"{path}:{d.Line}:{d.Column}: ", d.ToString());
            Assert.False(string.IsNullOrEmpty(d.KeyPath), $"no key path: {d}");
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Migrate_output_reparses_and_loads_to_the_same_config(string file)
    {
        string path = TestFiles.TestData(file);
        var original = ConfigLoader.LoadFile(path);
        var migrated = ConfigCommandsLogic.Migrate(path);

        var document = ConfigDocument.Parse(migrated.Stdout, "migrated.toml");
        Assert.Equal(3L, document.Root["version"]);
        var reloaded = ConfigLoader.Load(document);
        Assert.Equal(3, reloaded.SourceVersion);
        Assert.Equal(ConfigWriter.Write(original.Config), ConfigWriter.Write(reloaded.Config));
        Assert.DoesNotContain(reloaded.Diagnostics, d => d.Kind is ConfigMigrationNotice or RemovedKey or UnknownKey);
        Assert.Equal(original.HasErrors ? 1 : 0, migrated.ExitCode);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Dump_output_reparses_and_loads_to_the_same_config(string file)
    {
        var original = ConfigLoader.LoadFile(TestFiles.TestData(file));
        string dumped = ConfigWriter.Write(original.Config);

        var reloaded = ConfigLoader.Load(ConfigDocument.Parse(dumped, "dump.toml"));

        Assert.Equal(dumped, ConfigWriter.Write(reloaded.Config));
        Assert.DoesNotContain(reloaded.Diagnostics, d => d.Kind is UnknownKey or UnknownPlugin or TypeMismatch or UnusedKey or RemovedKey);
    }

    [Fact]
    public void Registry_mirrors_warning_shows_the_hosts_toml_files_to_write()
    {
        var result = ConfigLoader.LoadFile(TestFiles.TestData("v2-registry-mirrors.toml"));
        var mirrors = Assert.Single(result.Diagnostics, d => d.Message.Contains(ConfigDeprecations.CriRegistryMirrors));

        Assert.Equal(DiagnosticSeverity.Warning, mirrors.Severity);
        Assert.Equal("plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors", mirrors.KeyPath);
        Assert.Contains("is not supported by Hull and is ignored", mirrors.Message);
        Assert.Contains("set `config_path = \"/etc/containerd/certs.d\"`", mirrors.Message);
        Assert.Contains("/etc/containerd/certs.d/docker.io/hosts.toml:", mirrors.Message);
        Assert.Contains("server = \"https://registry-1.docker.io\"", mirrors.Message);
        Assert.Contains("[host.\"https://mirror.gcr.io\"]", mirrors.Message);
        Assert.DoesNotContain("[host.\"https://registry-1.docker.io\"]", mirrors.Message); // the registry itself is the server
        Assert.Contains("/etc/containerd/certs.d/registry.internal:5000/hosts.toml:", mirrors.Message);
        Assert.Contains("[host.\"http://registry.internal:5000\"]", mirrors.Message);
    }

    [Fact]
    public void The_hosts_toml_the_mirrors_warning_suggests_is_valid_toml()
    {
        var mirrors = ConfigDocument.Parse("""
            ["docker.io"]
            endpoint = ["https://mirror.gcr.io"]
            ["*"]
            endpoint = ["https://cache.local"]
            """).Root;

        var files = Migration.RegistryHostsAdvice.HostsFiles(mirrors, "/etc/hull/certs.d/");

        Assert.Equal(["/etc/hull/certs.d/docker.io/hosts.toml", "/etc/hull/certs.d/_default/hosts.toml"], files.Select(f => f.Path));
        foreach (var (_, content) in files)
        {
            var hosts = ConfigDocument.Parse(content).Root;
            Assert.True(hosts.ContainsKey("host"));
        }
    }

    private static IEnumerable<ConfigDiagnosticKind> Kinds(ConfigLoadResult result, DiagnosticSeverity severity) =>
        result.Diagnostics.Where(d => d.Severity == severity).Select(d => d.Kind);
}
