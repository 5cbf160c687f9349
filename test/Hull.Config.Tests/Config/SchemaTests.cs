using System.Collections;
using System.Reflection;
using Hull.Config.Schema;
using Tomlyn.Model;

namespace Hull.Config.Tests.Config;

/// <summary>The schema is the one place per key: it binds, writes and documents every model property.</summary>
public class SchemaTests
{
    private static readonly Type[] ModelTypes =
    [
        typeof(HullConfig), typeof(GrpcConfig), typeof(DebugConfig), typeof(MetricsConfig), typeof(CriRuntimeConfig), typeof(RuntimeHandlerConfig),
        typeof(CniConfig), typeof(CriImagesConfig), typeof(CriServerConfig), typeof(NriConfig), typeof(NriValidatorConfig), typeof(TransferConfig), typeof(UnpackConfiguration),
        typeof(ImageVerifierConfig), typeof(OverlayfsConfig), typeof(OtlpConfig), typeof(TracingConfig), typeof(NodeConditionsConfig), typeof(MicroVmConfig),
    ];

    [Fact]
    public void Every_model_property_is_bound_by_exactly_one_key()
    {
        var bound = new List<string>();
        Walk(ConfigSchema.Root, new HullConfig(), (field, owner) =>
        {
            if (field.Get is null)
            {
                return; // bin_dir: an alias of bin_dirs
            }

            object changed = field.Set(owner, Different(field.Type, field.Get(owner)));
            var differing = owner.GetType().GetProperties().Where(p => !Same(p.GetValue(owner), p.GetValue(changed))).ToList();
            var property = Assert.Single(differing);
            bound.Add($"{owner.GetType().Name}.{property.Name}");
        });

        var expected = ModelTypes
            .SelectMany(t => t.GetProperties().Where(p => p.SetMethod is not null && !IsStructural(p.PropertyType)).Select(p => $"{t.Name}.{p.Name}"))
            .Order();
        Assert.Equal(expected, bound.Order());
    }

    [Fact]
    public void Every_key_survives_dump_and_reload_when_set_to_a_non_default_value()
    {
        Walk(ConfigSchema.Root, new HullConfig(), (_, _) => { }); // the walk itself must not throw
        int checkedKeys = 0;
        foreach (var key in ConfigSchema.Keys.Where(k => k.Usage is ConfigKeyUsage.Used or ConfigKeyUsage.HullOnly && k.Type != ConfigValueType.Table && k.Type != ConfigValueType.TableArray))
        {
            if (key.Path is "version" || key.Path.Contains("[]", StringComparison.Ordinal))
            {
                continue;
            }

            string path = key.Path.Replace("<name>", "runc", StringComparison.Ordinal);
            string toml = $"version = 3\n{(key.Section.Length == 0 ? "" : $"[plugins.'{key.Section}']\n")}{path} = {SampleToml(key)}\n";
            if (key.Path is "containerd.default_runtime_name")
            {
                toml = "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\ncontainerd.default_runtime_name = \"x\"\ncontainerd.runtimes.x.runtime_type = \"io.containerd.runc.v2\"\n";
            }

            var loaded = ConfigLoader.LoadText(toml, key.FullPath);
            Assert.False(loaded.HasErrors, $"{key.FullPath}: {string.Join("; ", loaded.Diagnostics)}");
            string dumped = ConfigWriter.Write(loaded.Config);
            if (SampleToml(key) != key.Default)
            {
                Assert.NotEqual(ConfigWriter.Write(new HullConfig()), dumped);
            }

            Assert.Equal(dumped, ConfigWriter.Write(ConfigLoader.LoadText(dumped).Config));
            checkedKeys++;
        }

        Assert.True(checkedKeys > 80, $"only {checkedKeys} keys checked");
    }

    [Fact]
    public void Default_config_dump_parses_and_loads_without_diagnostics_to_the_defaults()
    {
        var output = ConfigCommandsLogic.Default();
        var reloaded = ConfigLoader.Load(ConfigDocument.Parse(output.Stdout, "default.toml"));

        Assert.Empty(reloaded.Diagnostics);
        Assert.Equal(ConfigWriter.Write(new HullConfig()), ConfigWriter.Write(reloaded.Config));
    }

    [Fact]
    public void Hull_defaults_equal_containerd_2_defaults_except_the_documented_differences()
    {
        var containerd = ConfigLoader.LoadFile(TestFiles.TestData("containerd-2.0-default.toml")).Config;

        // The documented differences: Hull's own paths, and no pinned pause image.
        var aligned = containerd with
        {
            Root = Defaults.Root,
            State = Defaults.State,
            Grpc = containerd.Grpc with { Address = Defaults.Address },
            Images = containerd.Images with { PinnedImages = new Dictionary<string, string>() },
        };
        Assert.Equal(ConfigWriter.Write(new HullConfig()), ConfigWriter.Write(aligned));
        Assert.Equal(["root", "state", "grpc.address"], ConfigSchema.Keys.Where(k => k.Note?.Contains("containerd's default is") == true).Select(k => k.Path));
    }

    [Theory]
    [InlineData("", "version")]
    [InlineData("", "root")]
    [InlineData("", "state")]
    [InlineData("", "strict")]
    [InlineData("", "grpc.max_send_message_size")]
    [InlineData("", "debug.level")]
    [InlineData("", "metrics.address")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.default_runtime_name")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.runtimes.<name>.runtime_type")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.runtimes.<name>.runtime_path")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.runtimes.<name>.sandboxer")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.runtimes.<name>.options.BinaryName")]
    [InlineData(ConfigSchema.RuntimePlugin, "containerd.runtimes.<name>.options.SystemdCgroup")]
    [InlineData(ConfigSchema.RuntimePlugin, "cni.bin_dirs")]
    [InlineData(ConfigSchema.RuntimePlugin, "cni.bin_dir")]
    [InlineData(ConfigSchema.RuntimePlugin, "cni.conf_dir")]
    [InlineData(ConfigSchema.RuntimePlugin, "cni.max_conf_num")]
    [InlineData(ConfigSchema.RuntimePlugin, "cni.conf_template")]
    [InlineData(ConfigSchema.RuntimePlugin, "enable_cdi")]
    [InlineData(ConfigSchema.RuntimePlugin, "cdi_spec_dirs")]
    [InlineData(ConfigSchema.RuntimePlugin, "ignore_deprecation_warnings")]
    [InlineData(ConfigSchema.RuntimePlugin, "device_ownership_from_security_context")]
    [InlineData(ConfigSchema.ImagesPlugin, "snapshotter")]
    [InlineData(ConfigSchema.ImagesPlugin, "pinned_images")]
    [InlineData(ConfigSchema.ImagesPlugin, "max_concurrent_downloads")]
    [InlineData(ConfigSchema.ImagesPlugin, "image_pull_progress_timeout")]
    [InlineData(ConfigSchema.ImagesPlugin, "registry.config_path")]
    [InlineData(ConfigSchema.ServerPlugin, "stream_server_address")]
    [InlineData(ConfigSchema.ServerPlugin, "stream_server_port")]
    [InlineData(ConfigSchema.ServerPlugin, "stream_idle_timeout")]
    [InlineData(ConfigSchema.ServerPlugin, "enable_tls_streaming")]
    [InlineData(ConfigSchema.ServerPlugin, "x509_key_pair_streaming.tls_cert_file")]
    [InlineData(ConfigSchema.ServerPlugin, "x509_key_pair_streaming.tls_key_file")]
    [InlineData(ConfigSchema.NriPlugin, "disable")]
    [InlineData(ConfigSchema.NriPlugin, "socket_path")]
    [InlineData(ConfigSchema.NriPlugin, "plugin_path")]
    [InlineData(ConfigSchema.NriPlugin, "plugin_config_path")]
    [InlineData(ConfigSchema.NriPlugin, "plugin_registration_timeout")]
    [InlineData(ConfigSchema.NriPlugin, "plugin_request_timeout")]
    [InlineData(ConfigSchema.NriPlugin, "disable_connections")]
    [InlineData(ConfigSchema.TransferPlugin, "max_concurrent_uploaded_layers")]
    [InlineData(ConfigSchema.TransferPlugin, "config_path")]
    [InlineData(ConfigSchema.TransferPlugin, "unpack_config")]
    [InlineData(ConfigSchema.ImageVerifierPlugin, "bin_dir")]
    [InlineData(ConfigSchema.ImageVerifierPlugin, "max_verifiers")]
    [InlineData(ConfigSchema.ImageVerifierPlugin, "per_verifier_timeout")]
    [InlineData(ConfigSchema.OverlayfsPlugin, "root_path")]
    [InlineData(ConfigSchema.OverlayfsPlugin, "upperdir_label")]
    [InlineData(ConfigSchema.OverlayfsPlugin, "sync_remove")]
    [InlineData(ConfigSchema.OverlayfsPlugin, "mount_options")]
    public void Schema_has_the_containerd_keys_Hull_implements(string section, string path)
    {
        var key = Assert.Single(ConfigSchema.Keys, k => k.Section == section && k.Path == path);
        Assert.NotEqual(ConfigKeyUsage.Ignored, key.Usage);
        Assert.NotEqual(ConfigKeyUsage.Removed, key.Usage);
        Assert.False(string.IsNullOrWhiteSpace(key.Description));
    }

    /// <summary>containerd keys Hull accepts and does not use, because what they tune does not exist in Hull; each says why.</summary>
    [Theory]
    [InlineData("", "debug.address")]
    [InlineData(ConfigSchema.RuntimePlugin, "enable_selinux")]
    [InlineData(ConfigSchema.RuntimePlugin, "max_container_log_line_size")]
    [InlineData(ConfigSchema.ImagesPlugin, "disable_snapshot_annotations")]
    [InlineData(ConfigSchema.TransferPlugin, "max_concurrent_downloads")]
    public void Keys_Hull_accepts_but_does_not_use_say_why(string section, string path)
    {
        var key = Assert.Single(ConfigSchema.Keys, k => k.Section == section && k.Path == path);
        Assert.Equal(ConfigKeyUsage.Ignored, key.Usage);
        Assert.False(string.IsNullOrWhiteSpace(key.Note));
    }

    [Fact]
    public void Keys_are_unique_and_described()
    {
        Assert.Equal(ConfigSchema.Keys.Count, ConfigSchema.Keys.Select(k => k.FullPath).Distinct().Count());
        Assert.All(ConfigSchema.Keys.Where(k => k.Usage != ConfigKeyUsage.Removed), k => Assert.False(string.IsNullOrWhiteSpace(k.Description), k.FullPath));
        Assert.All(ConfigSchema.Keys.Where(k => k.Usage == ConfigKeyUsage.Removed), k => Assert.False(string.IsNullOrWhiteSpace(k.Note), k.FullPath));
        Assert.Equal(ConfigKeyUsage.HullOnly, Assert.Single(ConfigSchema.Keys, k => k.Path == "strict").Usage);
    }

    private static void Walk(IReadOnlyList<SchemaNode> nodes, object owner, Action<FieldNode, object> visit)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case FieldNode field:
                    visit(field, owner);
                    break;
                case TableNode { Ignored: false } table:
                    Walk(table.Children, table.Get(owner), visit);
                    break;
                case MapNode map:
                    Walk(map.Element, map.NewElement(), visit);
                    break;
                case TableArrayNode array:
                    Walk(array.Element, array.NewElement(), visit);
                    break;
                case PluginsNode plugins:
                    foreach (var plugin in plugins.Plugins)
                    {
                        Walk(plugin.Children, plugin.Get((HullConfig)owner), visit);
                    }

                    break;
            }
        }
    }

    private static object Different(ConfigValueType type, object current) => type switch
    {
        ConfigValueType.String => (string)current + "-changed",
        ConfigValueType.Integer => (int)current + 7,
        ConfigValueType.Float => (double)current / 2 + 0.25,
        ConfigValueType.Boolean => !(bool)current,
        ConfigValueType.Duration => (TimeSpan)current + TimeSpan.FromSeconds(7),
        ConfigValueType.StringList => new List<string> { "changed" },
        ConfigValueType.StringMap => new Dictionary<string, string> { ["changed"] = "yes" },
        _ => throw new InvalidOperationException(type.ToString()),
    };

    private static string SampleToml(ConfigKeyInfo key) => key.Type switch
    {
        ConfigValueType.String when key.Path.EndsWith("snapshotter", StringComparison.Ordinal) => "\"overlayfs\"",
        ConfigValueType.String when key.Path.EndsWith("stream_server_port", StringComparison.Ordinal) => "\"10010\"",
        ConfigValueType.String when key.Path.EndsWith("level", StringComparison.Ordinal) => "\"debug\"",
        ConfigValueType.String when key.Path.EndsWith("format", StringComparison.Ordinal) => "\"json\"",
        ConfigValueType.String when key.Path.EndsWith("ip_pref", StringComparison.Ordinal) => "\"ipv6\"",
        ConfigValueType.String when key.Path.EndsWith("sandboxer", StringComparison.Ordinal) => "\"microvm\"",
        ConfigValueType.String when key.Path.EndsWith("microvm.accel", StringComparison.Ordinal) => "\"tcg\"",
        ConfigValueType.String when key.Path.EndsWith("runtime_type", StringComparison.Ordinal) => "\"io.containerd.runc.v1\"",
        ConfigValueType.String when key.Path.EndsWith("tls_cert_file", StringComparison.Ordinal) => "\"/c\"\nx509_key_pair_streaming.tls_key_file = \"/k\"",
        ConfigValueType.String when key.Path.EndsWith("tls_key_file", StringComparison.Ordinal) => "\"/k\"\nx509_key_pair_streaming.tls_cert_file = \"/c\"",
        ConfigValueType.String => "\"/changed\"",
        ConfigValueType.Boolean when key.Path.EndsWith("all_devices_allowed", StringComparison.Ordinal) =>
            "true\ncontainerd.runtimes.runc.privileged_without_host_devices = true",
        ConfigValueType.Integer => "77",
        ConfigValueType.Float => "0.5",
        ConfigValueType.Boolean => key.Default == "true" ? "false" : "true",
        ConfigValueType.Duration => "\"7m30s\"",
        ConfigValueType.StringList => "[\"/changed\"]",
        ConfigValueType.StringMap when key.Path.EndsWith("plugin_request_timeouts", StringComparison.Ordinal) => "{ logger = \"500ms\" }",
        ConfigValueType.StringMap => "{ sandbox = \"registry.example/pause:1\" }",
        _ => throw new InvalidOperationException(key.FullPath),
    };

    private static bool IsStructural(Type type) =>
        ModelTypes.Contains(type) || (type.IsGenericType && type.GetGenericArguments().Any(ModelTypes.Contains));

    private static bool Same(object? a, object? b) => (a, b) switch
    {
        (IEnumerable x, IEnumerable y) when a is not string => x.Cast<object>().SequenceEqual(y.Cast<object>()),
        _ => Equals(a, b),
    };

    [Theory]
    [InlineData("version = 3\n[plugins.'io.containerd.cri.v1.runtime']\nenable_cdi = false\n", false, true)]
    [InlineData("version = 3\n[plugins.'io.containerd.cri.v1.runtime']\nenable_cdi = true\n", true, false)]
    [InlineData("version = 2\n[plugins.'io.containerd.grpc.v1.cri']\nenable_cdi = false\n", false, true)]
    [InlineData("version = 3\n", true, false)]
    public void Turning_cdi_off_records_containerd_2_2s_enable_cdi_deprecation(string toml, bool enabled, bool deprecated)
    {
        var result = ConfigLoader.LoadText(toml, "config.toml");
        Assert.Equal(enabled, result.Config.Runtime.EnableCdi);
        Assert.Equal(deprecated, result.DeprecationIds.Contains(ConfigDeprecations.EnableCdi));
        Assert.Equal(deprecated, result.Diagnostics.Any(d => d.Kind == ConfigDiagnosticKind.Deprecated && d.Message.Contains("enable_cdi", StringComparison.Ordinal)));
    }
}
