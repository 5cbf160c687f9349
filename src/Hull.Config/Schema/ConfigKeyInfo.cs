using Hull.Config.TomlFiles;

namespace Hull.Config.Schema;

/// <summary>One key of the config file, for documentation and tooling.</summary>
/// <param name="Section">The plugin ID of its <c>[plugins.'…']</c> section, or empty for top-level keys.</param>
/// <param name="Path">Its dotted path inside the section; <c>&lt;name&gt;</c> stands for a map entry's name.</param>
/// <param name="Type">Its TOML shape.</param>
/// <param name="Usage">What Hull does with it.</param>
/// <param name="Default">The default as TOML (inline syntax), or null when there is none to show.</param>
/// <param name="Description">What it does.</param>
/// <param name="Note">How Hull differs from containerd, what replaces a removed key, and the like.</param>
public sealed record ConfigKeyInfo(string Section, string Path, ConfigValueType Type, ConfigKeyUsage Usage, string? Default, string Description, string? Note)
{
    /// <summary>The full TOML path, e.g. <c>plugins."io.containerd.cri.v1.runtime".cni.bin_dirs</c>.</summary>
    public string FullPath => Section.Length == 0 ? Path : $"plugins.{TomlText.FormatKey(Section)}.{Path}";

    internal static IReadOnlyList<ConfigKeyInfo> Flatten(IReadOnlyList<SchemaNode> root)
    {
        var keys = new List<ConfigKeyInfo>();
        Walk(keys, "", "", root, new HullConfig());
        return keys;
    }

    private static void Walk(List<ConfigKeyInfo> keys, string section, string prefix, IReadOnlyList<SchemaNode> nodes, object owner)
    {
        foreach (var node in nodes)
        {
            string path = prefix.Length == 0 ? node.Key : prefix + "." + node.Key;
            switch (node)
            {
                case FieldNode field:
                    keys.Add(new ConfigKeyInfo(section, path, field.Type, field.Usage,
                        field.Get is null ? null : Format(field.Get(owner)), field.Description, field.Note));
                    break;
                case IgnoredNode ignoredNode:
                    string? defaultText = ignoredNode.Default switch
                    {
                        null => null,
                        _ when ReferenceEquals(ignoredNode.Default, IgnoredNode.Empty) => ignoredNode.Type == ConfigValueType.Table ? "{}" : "[]",
                        var value => Format(value),
                    };
                    keys.Add(new ConfigKeyInfo(section, path, ignoredNode.Type, ConfigKeyUsage.Ignored, defaultText, ignoredNode.Description, null));
                    break;
                case RemovedNode removed:
                    keys.Add(new ConfigKeyInfo(section, path, ConfigValueType.Any, ConfigKeyUsage.Removed, null, "", removed.Advice));
                    break;
                case TableNode table:
                    Walk(keys, section, path, table.Children, table.Get(owner));
                    break;
                case MapNode map:
                    var names = map.GetEntries(owner).Select(e => e.Key).ToList();
                    keys.Add(new ConfigKeyInfo(section, path, ConfigValueType.Table, ConfigKeyUsage.Used,
                        names.Count == 0 ? "{}" : string.Join(", ", names.Select(n => $"`{n}`")), map.Description, null));
                    Walk(keys, section, path + "." + map.ElementName, map.Element, map.NewElement());
                    break;
                case TableArrayNode array:
                    keys.Add(new ConfigKeyInfo(section, path, ConfigValueType.TableArray, ConfigKeyUsage.Used,
                        array.GetItems(owner).Count == 0 ? "[]" : null, array.Description, null));
                    Walk(keys, section, path + "[]", array.Element, array.NewElement());
                    break;
                case PluginsNode plugins:
                    foreach (var plugin in plugins.Plugins)
                    {
                        Walk(keys, plugin.Key, "", plugin.Children, plugin.Get((HullConfig)owner));
                    }

                    break;
            }
        }
    }

    private static string Format(object value) => TomlText.FormatValue(ValueConversion.ToToml(value));
}
