using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hull.Config;
using Hull.Config.Schema;
using Hulld.Composition;

namespace Hulld.Tests;

/// <summary>
/// Every key Hull documents as used reaches the code that uses it: set to something else than its default, it changes
/// what hulld binds from the config (<see cref="BoundOptions"/>). A key that changes nothing is a key that silently does
/// nothing — the class of bug that kept every kubelet pod from starting when tolerate_missing_hugetlb_controller was
/// bound to nothing. Keys Hull accepts and ignores are marked Ignored in the schema (with a warning when set) and are
/// not checked here.
/// </summary>
public sealed class ConfigKeyBindingTests
{
    /// <summary>Keys the config loader itself consumes, not the daemon's libraries.</summary>
    private static readonly HashSet<string> LoaderKeys = ["version", "strict"];

    /// <summary>
    /// Keys that are documented as used but not bound yet, each with the issue that binds it. This list only shrinks:
    /// a key here must come out of it (and the test then holds it bound) when its feature lands.
    /// </summary>
    private static readonly Dictionary<string, string> NotYetBound = new(StringComparer.Ordinal)
    {
        [Overlayfs("root_path")] = "overlayfs snapshotter options",
        [Overlayfs("upperdir_label")] = "overlayfs snapshotter options",
        [Overlayfs("sync_remove")] = "overlayfs snapshotter options",
        [Overlayfs("mount_options")] = "overlayfs snapshotter options",
        [Runtime("containerd.runtimes.<name>.base_runtime_spec")] = "base runtime spec",
        [Runtime("cni.conf_template")] = "CNI config template from UpdateRuntimeConfig",
        [Images("discard_unpacked_layers")] = "image GC of unpacked layers",
        [Images("image_pull_with_sync_fs")] = "syncfs after unpack",
    };

    private const string ValidatorOn = "[plugins.'io.containerd.nri.v1.nri'.default_validator]\nenable = true\n";

    private static string Runtime(string key) => $"plugins.\"io.containerd.cri.v1.runtime\".{key}";
    private static string Images(string key) => $"plugins.\"io.containerd.cri.v1.images\".{key}";
    private static string Nri(string key) => $"plugins.\"io.containerd.nri.v1.nri\".{key}";
    private static string Overlayfs(string key) => $"plugins.\"io.containerd.snapshotter.v1.overlayfs\".{key}";

    public static TheoryData<string> UsedKeys()
    {
        var data = new TheoryData<string>();
        foreach (var key in ConfigSchema.Keys)
        {
            if (key.Usage is ConfigKeyUsage.Ignored or ConfigKeyUsage.Removed) continue;
            if (key.Type is ConfigValueType.Table or ConfigValueType.TableArray or ConfigValueType.Any) continue; // containers; their keys are listed
            if (LoaderKeys.Contains(key.FullPath)) continue;
            data.Add(key.FullPath);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(UsedKeys))]
    public void Every_used_key_changes_what_hulld_binds(string fullPath)
    {
        if (NotYetBound.ContainsKey(fullPath)) return; // listed with its issue; see NotYetBound
        var key = ConfigSchema.Keys.Single(k => k.FullPath == fullPath);
        if (SingleValued.ContainsKey(fullPath)) return; // nothing to change it to; see SingleValued
        string toml = TomlSetting(key, OtherValue(key));
        Assert.True(Bind(toml) != Bind(Baseline(key)), $"`{fullPath}` is documented as used, but setting it changes nothing hulld binds:\n{toml}");
    }

    [Fact]
    public void The_not_yet_bound_list_names_only_keys_that_exist_and_are_still_unbound()
    {
        foreach (var path in NotYetBound.Keys)
        {
            var key = ConfigSchema.Keys.SingleOrDefault(k => k.FullPath == path);
            Assert.True(key is not null, $"`{path}` is not a config key");
            Assert.True(Bind(TomlSetting(key, OtherValue(key))) == Bind(Baseline(key)), $"`{path}` is bound now: remove it from NotYetBound");
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        ReferenceHandler = ReferenceHandler.IgnoreCycles,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>What hulld binds from a config file, as JSON to compare.</summary>
    private static string Bind(string toml)
    {
        var loaded = ConfigLoader.LoadText(toml, "test.toml");
        Assert.False(loaded.HasErrors, $"{toml}\n{ConfigCommandsLogic.Format(loaded.Diagnostics)}");
        return JsonSerializer.Serialize(BoundOptions.Bind(loaded.Config), JsonOptions);
    }

    /// <summary>The file a key's setting is compared with: the same key at its default (or at a second valid value).</summary>
    private static string Baseline(ConfigKeyInfo key) => (SecondValues.GetValueOrDefault(key.FullPath) ?? key.Default) is { } value
        ? TomlSetting(key, value)
        : $"version = 3\n{Extra.GetValueOrDefault(key.FullPath, "")}"; // a key without a default (a deprecated alias): compared with leaving it out

    /// <summary>Keys whose one valid value is their default, so there is nothing to set them to.</summary>
    private static readonly Dictionary<string, string> SingleValued = new(StringComparer.Ordinal)
    {
        [Images("snapshotter")] = "Hull has one snapshotter for images, overlayfs",
        [Runtime("containerd.runtimes.<name>.snapshotter")] = "Hull has one snapshotter for images, overlayfs",
    };

    /// <summary>Where a key's default is not a valid value by itself (one of a pair).</summary>
    private static readonly Dictionary<string, string> SecondValues = new(StringComparer.Ordinal)
    {
        ["plugins.\"io.containerd.grpc.v1.cri\".x509_key_pair_streaming.tls_cert_file"] = "\"/other\"",
        ["plugins.\"io.containerd.grpc.v1.cri\".x509_key_pair_streaming.tls_key_file"] = "\"/other\"",
    };

    /// <summary>A config file that sets <paramref name="key"/> (and only what it needs) to a valid value other than its default.</summary>
    internal static string TomlSetting(ConfigKeyInfo key, string value)
    {
        string path = key.Path.Replace("<name>", "runc", StringComparison.Ordinal);
        string table = key.Section.Length == 0 ? "" : $"plugins.'{key.Section}'";
        bool arrayElement = path.Contains("[]", StringComparison.Ordinal);
        if (arrayElement)
        {
            var parts = path.Split("[].", 2);
            return $"version = 3\n[[{table}.{parts[0]}]]\n{parts[1]} = {value}\n";
        }
        int dot = path.LastIndexOf('.');
        string leaf = dot < 0 ? path : path[(dot + 1)..];
        string parent = dot < 0 ? table : (table.Length == 0 ? path[..dot] : $"{table}.{path[..dot]}");
        string extra = Extra.GetValueOrDefault(key.FullPath, "");
        string header = parent.Length == 0 ? "" : $"[{parent}]\n";
        if (header.Length > 0 && extra.StartsWith(header, StringComparison.Ordinal)) header = ""; // the extra lines opened the table already
        return $"version = 3\n{extra}{header}{leaf} = {value}\n";
    }

    /// <summary>What some keys need besides themselves to be valid, or to matter at all.</summary>
    private static readonly Dictionary<string, string> Extra = new(StringComparer.Ordinal)
    {
        // The default validator's settings matter only while it is enabled.
        [Nri("default_validator.reject_oci_hook_adjustment")] = ValidatorOn,
        [Nri("default_validator.reject_runtime_default_seccomp_adjustment")] = ValidatorOn,
        [Nri("default_validator.reject_unconfined_seccomp_adjustment")] = ValidatorOn,
        [Nri("default_validator.reject_custom_seccomp_adjustment")] = ValidatorOn,
        [Nri("default_validator.reject_namespace_adjustment")] = ValidatorOn,
        [Nri("default_validator.reject_sysctl_adjustment")] = ValidatorOn,
        [Nri("default_validator.required_plugins")] = ValidatorOn,
        [Nri("default_validator.tolerate_missing_plugins_annotation")] = ValidatorOn,
        // A handler's microvm table is read only when its sandboxer is microvm.
        [Runtime("containerd.runtimes.<name>.microvm.qemu_path")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.kernel_path")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.initrd_path")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.memory_mib")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.vcpus")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.accel")] = MicroVmHandler,
        [Runtime("containerd.runtimes.<name>.microvm.boot_timeout")] = MicroVmHandler,
        [Runtime("containerd.default_runtime_name")] = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.other]\n",
        [Runtime("containerd.runtimes.<name>.privileged_without_host_devices_all_devices_allowed")] =
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nprivileged_without_host_devices = true\n",
        ["plugins.\"io.containerd.grpc.v1.cri\".x509_key_pair_streaming.tls_cert_file"] =
            "[plugins.'io.containerd.grpc.v1.cri'.x509_key_pair_streaming]\ntls_key_file = \"/k\"\n",
        ["plugins.\"io.containerd.grpc.v1.cri\".x509_key_pair_streaming.tls_key_file"] =
            "[plugins.'io.containerd.grpc.v1.cri'.x509_key_pair_streaming]\ntls_cert_file = \"/c\"\n",
    };

    private const string MicroVmHandler = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\nsandboxer = \"microvm\"\n";

    /// <summary>Valid values for keys that are checked (an enumeration, a port, a snapshotter name).</summary>
    private static readonly Dictionary<string, string> ValidValues = new(StringComparer.Ordinal)
    {
        ["debug.level"] = "\"debug\"",
        ["debug.format"] = "\"json\"",
        ["plugins.\"io.containerd.cri.v1.runtime\".unset_seccomp_profile"] = "\"runtime/default\"",
        ["plugins.\"io.containerd.cri.v1.runtime\".containerd.default_runtime_name"] = "\"other\"",
        ["plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.<name>.runtime_type"] = "\"io.containerd.runc.v1\"",
        ["plugins.\"io.containerd.cri.v1.runtime\".cni.ip_pref"] = "\"ipv6\"",
        [Runtime("containerd.runtimes.<name>.cni_max_conf_num")] = "2",
        [Runtime("containerd.runtimes.<name>.sandboxer")] = "\"microvm\"",
        [Runtime("containerd.runtimes.<name>.microvm.accel")] = "\"tcg\"",
        [Nri("plugin_request_timeouts")] = "{ logger = \"500ms\" }",
        ["plugins.\"io.containerd.cri.v1.images\".pinned_images"] = "{ hulltest = \"docker.io/library/busybox:1\" }",
        ["plugins.\"io.containerd.grpc.v1.cri\".stream_server_port"] = "\"10010\"",
        ["plugins.\"io.containerd.grpc.v1.cri\".stream_server_address"] = "\"127.0.0.2\"",
        ["plugins.\"io.containerd.tracing.processor.v1.otlp\".protocol"] = "\"grpc\"",
    };

    private static string OtherValue(ConfigKeyInfo key)
    {
        if (ValidValues.TryGetValue(key.FullPath, out var valid)) return valid;
        return key.Type switch
        {
            ConfigValueType.Boolean => key.Default == "true" ? "false" : "true",
            ConfigValueType.Float => "0.5",
            ConfigValueType.Integer => (long.Parse(key.Default ?? "0", CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture),
            ConfigValueType.Duration => key.Default == "\"7s\"" ? "\"9s\"" : "\"7s\"",
            ConfigValueType.StringList => "[\"/hull-test\"]",
            ConfigValueType.StringMap => "{ hulltest = \"x\" }",
            _ => "\"/hull-test\"",
        };
    }
}
