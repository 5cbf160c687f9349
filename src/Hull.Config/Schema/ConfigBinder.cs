using Hull.Config.TomlFiles;
using Tomlyn.Model;

namespace Hull.Config.Schema;

/// <summary>
/// Binds a version 3 TOML tree to a <see cref="HullConfig"/> by walking <see cref="ConfigSchema"/>:
/// known keys are converted and set, type errors are errors, unknown keys and plugins are reported
/// with the closest known key, ignored and removed containerd keys are reported when set.
/// </summary>
internal static class ConfigBinder
{
    public static HullConfig Bind(TomlTable root, BindContext context)
    {
        var config = (HullConfig)BindTable(root, ConfigSchema.Root, new HullConfig(), "", null, context);
        Validate(config, context);
        return config;
    }

    private static object BindTable(TomlTable source, IReadOnlyList<SchemaNode> nodes, object owner, string v3Path, TableNode? table, BindContext context)
    {
        // Scalars first, so that a table's own settings (runtime_type) are known when its sub-tables (options) are checked.
        foreach (var (key, value) in source.Where(e => e.Value is not TomlTable).Concat(source.Where(e => e.Value is TomlTable)).ToList())
        {
            var at = context.Map.Locate(source, key);
            var node = Find(nodes, key);
            if (node is null)
            {
                node = FindIgnoringCase(nodes, key);
                if (node is not null)
                {
                    context.Warn(ConfigDiagnosticKind.KeyCase, $"`{at.Path}` is spelled `{node.Key}`; it is used, but write it as `{node.Key}`", at);
                }
            }

            if (node is null)
            {
                if (table?.IsOpen?.Invoke(owner) == true)
                {
                    context.Warn(ConfigDiagnosticKind.UnusedKey, $"`{at.Path}` is passed to the runtime by containerd and is not used by Hull", at);
                }
                else
                {
                    ReportUnknown(source, key, nodes, at, context);
                }

                continue;
            }

            owner = BindNode(node, source, key, value, owner, Join(v3Path, node.Key), at, context);
        }

        return owner;
    }

    private static object BindNode(SchemaNode node, TomlTable source, string key, object value, object owner, string v3Path, Located at, BindContext context)
    {
        context.Bound[v3Path] = at;
        switch (node)
        {
            case FieldNode field:
            {
                if (!Convert(value, field.Type, at, context, out object converted))
                {
                    return owner;
                }

                owner = field.Set(owner, converted);
                if (field.DeprecationId is not null && ValueConversion.IsSet(value))
                {
                    context.Deprecate(field.DeprecationId);
                    context.Warn(ConfigDiagnosticKind.Deprecated, $"`{at.Path}` is deprecated: {field.Note} ({field.DeprecationId})", at);
                }

                field.Check?.Invoke(converted, new FieldContext(context, at, owner));
                return owner;
            }

            case IgnoredNode ignored:
            {
                if (!Convert(value, ignored.Type, at, context, out object converted) || ignored.Default is null ||
                    ValueConversion.EqualsDefault(converted, ignored.Default))
                {
                    return owner;
                }

                string message = ignored.Explain?.Invoke(value, source, at.Path) ??
                                 $"`{at.Path}` is a containerd setting Hull does not use; it is ignored ({ignored.Description.TrimEnd('.')})";
                if (ignored.DeprecationId is not null)
                {
                    context.Deprecate(ignored.DeprecationId);
                    message += $" ({ignored.DeprecationId})";
                }

                context.Warn(ConfigDiagnosticKind.UnusedKey, message, at);
                return owner;
            }

            case RemovedNode removed:
                if (ValueConversion.IsSet(value))
                {
                    context.Warn(ConfigDiagnosticKind.RemovedKey, $"`{at.Path}` was removed in containerd 2.0 and is ignored: {removed.Advice}", at);
                    removed.Check?.Invoke(value, new FieldContext(context, at, owner));
                }

                return owner;

            case TableNode table:
                if (!ExpectTable(value, at, context, out var tableSource))
                {
                    return owner;
                }

                return table.Set(owner, BindTable(tableSource, table.Children, table.Get(owner), v3Path, table, context));

            case MapNode map:
            {
                if (!ExpectTable(value, at, context, out var mapSource))
                {
                    return owner;
                }

                var entries = map.GetEntries(owner).ToList();
                foreach (var (name, entryValue) in mapSource)
                {
                    var entryAt = context.Map.Locate(mapSource, name);
                    if (!ExpectTable(entryValue, entryAt, context, out var entryTable))
                    {
                        continue;
                    }

                    int index = entries.FindIndex(e => e.Key == name);
                    object element = index >= 0 ? entries[index].Value : map.NewElement();
                    string elementPath = Join(v3Path, name);
                    context.Bound[elementPath] = entryAt;
                    element = BindTable(entryTable, map.Element, element, elementPath, null, context);
                    if (index >= 0)
                    {
                        entries[index] = new KeyValuePair<string, object>(name, element);
                    }
                    else
                    {
                        entries.Add(new KeyValuePair<string, object>(name, element));
                    }
                }

                return map.SetEntries(owner, entries);
            }

            case TableArrayNode array:
            {
                if (TomlModel.AsTables(value) is not { } items)
                {
                    TypeError(value, ConfigValueType.TableArray, at, context);
                    return owner;
                }

                var elements = new List<object>();
                for (int i = 0; i < items.Count; i++)
                {
                    elements.Add(BindTable(items[i], array.Element, array.NewElement(), $"{v3Path}[{i}]", null, context));
                }

                return array.SetItems(owner, elements);
            }

            case PluginsNode plugins:
                return ExpectTable(value, at, context, out var pluginTables) ? BindPlugins(pluginTables, plugins, (HullConfig)owner, context) : owner;

            default:
                throw new InvalidOperationException($"unexpected schema node {node.GetType().Name}");
        }
    }

    private static HullConfig BindPlugins(TomlTable source, PluginsNode node, HullConfig config, BindContext context)
    {
        var ignoredPlugins = new List<(string Id, Located At)>();
        foreach (var (id, value) in source)
        {
            var at = context.Map.Locate(source, id);
            var plugin = node.Plugins.FirstOrDefault(p => p.Key == id);
            if (plugin is not null)
            {
                string v3Path = "plugins." + TomlText.FormatKey(id);
                context.Bound[v3Path] = at;
                if (ExpectTable(value, at, context, out var section))
                {
                    config = plugin.Set(config, BindTable(section, plugin.Children, plugin.Get(config), v3Path, null, context));
                }
            }
            else if (node.ContainerdPlugins.Contains(id))
            {
                ignoredPlugins.Add((id, at));
            }
            else
            {
                string? suggestion = KeySuggester.Closest(id, node.Plugins.Select(p => p.Key).Concat(node.ContainerdPlugins));
                // Neither Hull nor containerd has it: a typo or a config for another program, never ignored silently.
                context.Error(ConfigDiagnosticKind.UnknownPlugin,
                    $"unknown plugin `{at.Path}`: neither Hull nor containerd has a plugin \"{id}\"" +
                    (suggestion is null ? "" : $"; did you mean \"{suggestion}\"?"), at);
            }
        }

        if (ignoredPlugins.Count > 0)
        {
            context.Warn(ConfigDiagnosticKind.IgnoredPlugins,
                $"settings of containerd plugins Hull does not have are ignored: {string.Join(", ", ignoredPlugins.Select(p => Describe(p.Id, p.At)))}",
                ignoredPlugins[0].At);
        }

        return config;

        static string Describe(string id, Located at) => at.Position.IsKnown ? $"{id} (line {at.Position.Line})" : id;
    }

    private static void ReportUnknown(TomlTable source, string key, IReadOnlyList<SchemaNode> nodes, Located at, BindContext context)
    {
        var siblings = nodes.Select(n => n.Key).Concat(context.Map.FormerKeys(source));
        string? suggestion = KeySuggester.Closest(key, siblings);
        string message = $"unknown key `{at.Path}`";
        if (suggestion is not null)
        {
            message += $"; did you mean `{suggestion}`?";
        }
        else if (ConfigSchema.Keys.Where(k => k.Usage is not ConfigKeyUsage.Removed && LastSegment(k.Path) == key).Select(k => k.FullPath).FirstOrDefault() is { } elsewhere)
        {
            message += $"; `{key}` is known as `{elsewhere}`";
        }
        else if (key == "sandbox_image")
        {
            message += $"; in version 3 it is `pinned_images.sandbox` of [plugins.\"{ConfigSchema.ImagesPlugin}\"]";
        }

        context.Warn(ConfigDiagnosticKind.UnknownKey, message, at);
    }

    private static bool Convert(object value, ConfigValueType type, Located at, BindContext context, out object converted)
    {
        if (ValueConversion.TryFromToml(value, type, out converted, out string? error))
        {
            return true;
        }

        string separator = error!.StartsWith("got ", StringComparison.Ordinal) ? ", " : ": ";
        context.Error(ConfigDiagnosticKind.TypeMismatch, $"`{at.Path}` must be {ValueConversion.TypeName(type)}{separator}{error}", at);
        return false;
    }

    private static bool ExpectTable(object value, Located at, BindContext context, out TomlTable table)
    {
        if (value is TomlTable t)
        {
            table = t;
            return true;
        }

        table = null!;
        TypeError(value, ConfigValueType.Table, at, context);
        return false;
    }

    private static void TypeError(object value, ConfigValueType expected, Located at, BindContext context) =>
        context.Error(ConfigDiagnosticKind.TypeMismatch, $"`{at.Path}` must be {ValueConversion.TypeName(expected)}, got {ValueConversion.Describe(value)}", at);

    /// <summary>Rules that involve more than one key, as containerd's Validate*Config functions check them.</summary>
    private static void Validate(HullConfig config, BindContext context)
    {
        string runtime = "plugins." + TomlText.FormatKey(ConfigSchema.RuntimePlugin);
        var r = config.Runtime;
        Located? Where(string v3Path) => context.Bound.TryGetValue(v3Path, out var at) ? at : null;

        if (r.DefaultRuntimeName.Length == 0)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, "`containerd.default_runtime_name` must not be empty", Where($"{runtime}.containerd.default_runtime_name"));
        }
        else if (!r.Runtimes.ContainsKey(r.DefaultRuntimeName))
        {
            context.Error(ConfigDiagnosticKind.InvalidValue,
                $"no runtime \"{r.DefaultRuntimeName}\" is configured in `containerd.runtimes` for `default_runtime_name = \"{r.DefaultRuntimeName}\"`" +
                $" (configured: {string.Join(", ", r.Runtimes.Keys.Select(k => $"\"{k}\""))})",
                Where($"{runtime}.containerd.default_runtime_name"));
        }

        foreach (var (name, handler) in r.Runtimes)
        {
            if (handler.PrivilegedWithoutHostDevicesAllDevicesAllowed && !handler.PrivilegedWithoutHostDevices)
            {
                string path = $"{runtime}.containerd.runtimes.{TomlText.FormatKey(name)}";
                context.Error(ConfigDiagnosticKind.InvalidValue,
                    $"runtime \"{name}\": `privileged_without_host_devices_all_devices_allowed` requires `privileged_without_host_devices` to be enabled",
                    Where($"{path}.privileged_without_host_devices_all_devices_allowed"));
            }
        }

        if (Where($"{runtime}.cni.bin_dir") is { } binDir && Where($"{runtime}.cni.bin_dirs") is not null)
        {
            context.Error(ConfigDiagnosticKind.InvalidValue, "`cni.bin_dir` and `cni.bin_dirs` cannot be set at the same time; keep `bin_dirs`", binDir);
        }

        var server = config.Server;
        if ((server.TlsCertFile.Length == 0) != (server.TlsKeyFile.Length == 0))
        {
            string pair = "plugins." + TomlText.FormatKey(ConfigSchema.ServerPlugin) + ".x509_key_pair_streaming";
            context.Error(ConfigDiagnosticKind.InvalidValue, "`x509_key_pair_streaming` needs both `tls_cert_file` and `tls_key_file`",
                Where($"{pair}.tls_cert_file") ?? Where($"{pair}.tls_key_file"));
        }
    }

    private static SchemaNode? Find(IReadOnlyList<SchemaNode> nodes, string key)
    {
        foreach (var node in nodes)
        {
            if (node.Key == key)
            {
                return node;
            }
        }

        return null;
    }

    private static SchemaNode? FindIgnoringCase(IReadOnlyList<SchemaNode> nodes, string key) =>
        nodes.FirstOrDefault(n => n is not PluginsNode && string.Equals(n.Key, key, StringComparison.OrdinalIgnoreCase));

    private static string LastSegment(string path) => path[(path.LastIndexOf('.') + 1)..];

    private static string Join(string path, string key) => SourceMap.Join(path, key);
}
