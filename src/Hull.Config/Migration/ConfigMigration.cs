using Hull.Config.Schema;
using Hull.Config.TomlFiles;
using Tomlyn.Model;

namespace Hull.Config.Migration;

/// <summary>
/// Brings a version 1 or 2 file to version 3 in memory, the way containerd 2.x does:
/// <list type="bullet">
/// <item>version 1 → 2 (cmd/containerd/server/config/config.go <c>v1Migrate</c>): short plugin names such as
/// <c>cri</c> or <c>linux</c> become full IDs (<c>io.containerd.grpc.v1.cri</c>), also in <c>disabled_plugins</c>/<c>required_plugins</c>;</item>
/// <item>version 2 → 3 (the <c>ConfigMigration</c> functions of plugins/cri/images, plugins/cri/runtime and plugins/cri/cri.go):
/// the single <c>io.containerd.grpc.v1.cri</c> section is split into <c>io.containerd.cri.v1.images</c>
/// (<c>sandbox_image</c> → <c>pinned_images.sandbox</c>, <c>containerd.snapshotter</c>, <c>registry</c>, pull settings),
/// <c>io.containerd.grpc.v1.cri</c> (streaming server) and <c>io.containerd.cri.v1.runtime</c> (everything else:
/// <c>containerd.runtimes</c>, <c>cni</c>, security settings), with <c>sandbox_mode</c> → <c>sandboxer</c>.</item>
/// </list>
/// Beyond containerd 2.0, <c>cni.bin_dir</c> becomes <c>cni.bin_dirs</c> (containerd 2.1 does that when it validates),
/// and the keys containerd 2.0 removed are left for the binder to report.
/// </summary>
internal static class ConfigMigration
{
    /// <summary>containerd's <c>corePlugins</c>: the short names of version 1.</summary>
    private static readonly Dictionary<string, string> V1CorePlugins = new(StringComparer.Ordinal)
    {
        ["cri"] = "io.containerd.grpc.v1.cri",
        ["cgroups"] = "io.containerd.monitor.v1.cgroups",
        ["linux"] = "io.containerd.runtime.v1.linux",
        ["scheduler"] = "io.containerd.gc.v1.scheduler",
        ["bolt"] = "io.containerd.metadata.v1.bolt",
        ["task"] = "io.containerd.runtime.v2.task",
        ["opt"] = "io.containerd.internal.v1.opt",
        ["restart"] = "io.containerd.internal.v1.restart",
        ["tracing"] = "io.containerd.internal.v1.tracing",
        ["otlp"] = "io.containerd.tracing.processor.v1.otlp",
        ["aufs"] = "io.containerd.snapshotter.v1.aufs",
        ["btrfs"] = "io.containerd.snapshotter.v1.btrfs",
        ["devmapper"] = "io.containerd.snapshotter.v1.devmapper",
        ["native"] = "io.containerd.snapshotter.v1.native",
        ["overlayfs"] = "io.containerd.snapshotter.v1.overlayfs",
        ["zfs"] = "io.containerd.snapshotter.v1.zfs",
    };

    /// <summary>Keys of the version 2 CRI section that move to the images plugin (plugins/cri/images configMigration).</summary>
    internal static readonly string[] ImagesKeys =
        ["registry", "image_decryption", "max_concurrent_downloads", "image_pull_progress_timeout", "image_pull_with_sync_fs", "stats_collect_period"];

    /// <summary>Keys of the version 2 <c>containerd</c> table that move to the images plugin.</summary>
    internal static readonly string[] ImagesKeysOfContainerd = ["snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"];

    /// <summary>Keys that stay in <c>io.containerd.grpc.v1.cri</c> (plugins/cri/cri.go, completed in containerd 2.0.1).</summary>
    internal static readonly string[] ServerKeys =
        ["disable_tcp_service", "stream_server_address", "stream_server_port", "stream_idle_timeout", "enable_tls_streaming", "x509_key_pair_streaming"];

    /// <summary>
    /// Reads <c>version</c> and migrates <paramref name="root"/> in place to version 3. False when the version
    /// cannot be used (an error is reported); the tree is then left alone.
    /// </summary>
    public static bool Migrate(TomlTable root, BindContext context)
    {
        var at = context.Map.Locate(root, "version");
        int version = 1;
        if (root.TryGetValue("version", out object? value))
        {
            if (value is not long v)
            {
                context.Error(ConfigDiagnosticKind.TypeMismatch, $"`version` must be an integer (1, 2 or 3), got {ValueConversion.Describe(value)}", at);
                return false;
            }

            if (v > Defaults.ConfigVersion || v < 0)
            {
                context.Error(ConfigDiagnosticKind.InvalidValue,
                    $"config version {v} is not supported: Hull reads versions 1, 2 and {Defaults.ConfigVersion} (containerd 2.x writes version {Defaults.ConfigVersion})", at);
                return false;
            }

            // containerd treats version 0 as 1.
            version = Math.Max(1, (int)v);
        }

        context.SourceVersion = version;
        if (version == Defaults.ConfigVersion)
        {
            return true;
        }

        if (version == 1)
        {
            V1ToV2(root, context);
        }

        V2ToV3(root, context);
        root["version"] = (long)Defaults.ConfigVersion;

        string file = context.SourceName ?? "FILE";
        context.Deprecate(ConfigDeprecations.ForVersion(version)!);
        context.Warn(ConfigDiagnosticKind.ConfigMigrationNotice,
            $"config version {version} is migrated to version {Defaults.ConfigVersion} in memory at every start; the file is left alone. " +
            $"To migrate it for good, run `hulld config migrate --config {file} > new.toml`, check new.toml and replace the file with it " +
            $"({ConfigDeprecations.ForVersion(version)})",
            at.Position.IsKnown ? at : null);
        return true;
    }

    /// <summary>
    /// The version 3 file for a migrated tree, as <c>hulld config migrate</c> prints it: <c>version = 3</c> first,
    /// plugin sections sorted by ID (as containerd writes them), keys containerd 2.0 removed left out, unknown keys kept.
    /// </summary>
    public static TomlTable ToVersion3File(TomlTable root)
    {
        var file = new TomlTable();
        file.Add("version", (long)Defaults.ConfigVersion);
        foreach (var (key, value) in root)
        {
            if (key == "version")
            {
                continue;
            }

            if (key == "plugins" && value is TomlTable plugins)
            {
                var sorted = new TomlTable();
                foreach (var (id, section) in plugins.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    sorted.Add(id, section);
                }

                file.Add(key, sorted);
                continue;
            }

            file.Add(key, value);
        }

        Prune(file, ConfigSchema.Root);
        return file;
    }

    private static void V1ToV2(TomlTable root, BindContext context)
    {
        var map = context.Map;
        if (root.TryGetValue<TomlTable>("plugins", out var plugins))
        {
            var renamed = new TomlTable();
            foreach (var (name, value) in plugins.ToList())
            {
                string full = FullPluginName(name, out bool ambiguous);
                if (ambiguous)
                {
                    context.Warn(ConfigDiagnosticKind.Other, $"ambiguous plugin `{map.Locate(plugins, name).Path}` in a version 1 config, treated as \"{full}\"",
                        map.Locate(plugins, name));
                }

                map.RecordMove(plugins, name, renamed, full);
                renamed[full] = value;
            }

            map.Register(renamed, map.PathOf(plugins));
            root["plugins"] = renamed;
        }

        foreach (string listKey in new[] { "disabled_plugins", "required_plugins" })
        {
            if (root.TryGetValue<TomlArray>(listKey, out var list))
            {
                for (int i = 0; i < list.Count; i++)
                {
                    if (list[i] is string name)
                    {
                        list[i] = FullPluginName(name, out _);
                    }
                }
            }
        }
    }

    private static string FullPluginName(string name, out bool ambiguous)
    {
        ambiguous = false;
        if (name.Contains('.'))
        {
            return name;
        }

        if (V1CorePlugins.TryGetValue(name, out var full))
        {
            return full;
        }

        if (name.EndsWith("-service", StringComparison.Ordinal))
        {
            return "io.containerd.service.v1." + name;
        }

        ambiguous = true;
        return name is "windows" or "windows-lcow" ? "io.containerd.snapshotter.v1." + name : "io.containerd.grpc.v1." + name;
    }

    private static void V2ToV3(TomlTable root, BindContext context)
    {
        var map = context.Map;
        if (!root.TryGetValue<TomlTable>("plugins", out var plugins) || !plugins.TryGetValue<TomlTable>(ConfigSchema.ServerPlugin, out var cri))
        {
            return;
        }

        string pluginsPath = map.PathOf(plugins);
        cri.TryGetValue<TomlTable>("containerd", out var containerd);

        // io.containerd.cri.v1.images
        bool hadImages = plugins.TryGetValue<TomlTable>(ConfigSchema.ImagesPlugin, out var images);
        images ??= new TomlTable();
        map.Register(images, SourceMap.Join(pluginsPath, ConfigSchema.ImagesPlugin));
        if (cri.ContainsKey("sandbox_image"))
        {
            if (!images.TryGetValue<TomlTable>("pinned_images", out var pinned))
            {
                pinned = new TomlTable();
                images["pinned_images"] = pinned;
                map.Register(pinned, SourceMap.Join(map.PathOf(images), "pinned_images"));
            }

            var at = map.Locate(cri, "sandbox_image");
            Move(map, cri, "sandbox_image", pinned, "sandbox");
            context.Deprecate(ConfigDeprecations.SandboxImage);
            context.Warn(ConfigDiagnosticKind.Deprecated,
                $"`{at.Path}` is deprecated: version 3 has `pinned_images.sandbox` in [plugins.\"{ConfigSchema.ImagesPlugin}\"] ({ConfigDeprecations.SandboxImage})", at);
        }

        if (containerd is not null)
        {
            foreach (string key in ImagesKeysOfContainerd)
            {
                Move(map, containerd, key, images, key);
            }

            map.AddFormerKeys(containerd, ImagesKeysOfContainerd);
        }

        foreach (string key in ImagesKeys)
        {
            Move(map, cri, key, images, key);
        }

        // io.containerd.grpc.v1.cri keeps the streaming server.
        var server = new TomlTable();
        map.Register(server, SourceMap.Join(pluginsPath, ConfigSchema.ServerPlugin));
        foreach (string key in ServerKeys)
        {
            Move(map, cri, key, server, key);
        }

        map.AddFormerKeys(cri, ["sandbox_image", .. ImagesKeys, .. ServerKeys]);

        // io.containerd.cri.v1.runtime gets the rest.
        if (containerd is not null && containerd.TryGetValue<TomlTable>("runtimes", out var runtimes))
        {
            foreach (var (_, value) in runtimes)
            {
                if (value is TomlTable runtime && runtime.ContainsKey("sandbox_mode") && !runtime.ContainsKey("sandboxer"))
                {
                    Move(map, runtime, "sandbox_mode", runtime, "sandboxer");
                }
            }
        }

        if (cri.TryGetValue<TomlTable>("cni", out var cni) && cni.TryGetValue<string>("bin_dir", out var binDir) && !cni.ContainsKey("bin_dirs"))
        {
            var at = map.Locate(cni, "bin_dir");
            map.RecordMove(cni, "bin_dir", cni, "bin_dirs");
            cni.Remove("bin_dir");
            if (binDir.Length > 0)
            {
                cni["bin_dirs"] = TomlModel.StringArray([binDir]);
                context.Deprecate(ConfigDeprecations.CriCniBinDir);
                context.Warn(ConfigDiagnosticKind.Deprecated,
                    $"`{at.Path}` is deprecated: version 3 has `bin_dirs = [\"{binDir}\"]` ({ConfigDeprecations.CriCniBinDir})", at);
            }
        }

        map.RecordMove(plugins, ConfigSchema.ServerPlugin, plugins, ConfigSchema.RuntimePlugin);
        plugins[ConfigSchema.RuntimePlugin] = cri;
        if (server.Count > 0)
        {
            plugins[ConfigSchema.ServerPlugin] = server;
        }
        else
        {
            plugins.Remove(ConfigSchema.ServerPlugin);
        }

        if (!hadImages && images.Count > 0)
        {
            plugins[ConfigSchema.ImagesPlugin] = images;
        }
    }

    private static void Move(SourceMap map, TomlTable from, string fromKey, TomlTable to, string toKey)
    {
        if (!from.TryGetValue(fromKey, out object? value))
        {
            return;
        }

        map.RecordMove(from, fromKey, to, toKey);
        from.Remove(fromKey);
        to[toKey] = value;
    }

    /// <summary>
    /// Removes the keys containerd 2.0 removed (the binder has reported them) from a tree, following the schema,
    /// and tables left empty by that. True when something was removed.
    /// </summary>
    private static bool Prune(TomlTable table, IReadOnlyList<SchemaNode> nodes)
    {
        bool removedAny = false;
        foreach (var (key, value) in table.ToList())
        {
            var node = nodes.FirstOrDefault(n => n.Key == key);
            bool changed = node switch
            {
                RemovedNode => true,
                TableNode t when value is TomlTable sub => Prune(sub, t.Children),
                MapNode m when value is TomlTable entries => entries.Values.OfType<TomlTable>().Select(e => Prune(e, m.Element)).ToList().Any(c => c),
                TableArrayNode a when TomlModel.AsTables(value) is { } items => items.Select(e => Prune(e, a.Element)).ToList().Any(c => c),
                PluginsNode p when value is TomlTable sections => p.Plugins
                    .Select(plugin => sections.TryGetValue<TomlTable>(plugin.Key, out var section) && Prune(section, plugin.Children)).ToList().Any(c => c),
                _ => false,
            };
            if (changed && (node is RemovedNode || value is TomlTable { Count: 0 }))
            {
                table.Remove(key);
            }

            removedAny |= changed;
        }

        return removedAny;
    }
}
