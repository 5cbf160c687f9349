using Hull.Config.TomlFiles;
using Tomlyn.Model;

namespace Hull.Config.Schema;

/// <summary>
/// Writes a <see cref="HullConfig"/> as a version 3 config file with every key Hull uses, following
/// <see cref="ConfigSchema"/>. Loading the output gives the same configuration back.
/// </summary>
public static class ConfigWriter
{
    /// <summary>The configuration as a TOML tree.</summary>
    public static TomlTable ToToml(HullConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return WriteTable(ConfigSchema.Root, config);
    }

    /// <summary>The configuration as TOML text, with a comment line on top.</summary>
    public static string Write(HullConfig config, string? comment = null)
    {
        string body = TomlText.Write(ToToml(config));
        return comment is null ? body : $"# {comment}\n{body}";
    }

    private static TomlTable WriteTable(IReadOnlyList<SchemaNode> nodes, object owner)
    {
        var table = new TomlTable();
        foreach (var node in nodes)
        {
            switch (node)
            {
                case FieldNode { Get: not null } field:
                    table.Add(field.Key, ValueConversion.ToToml(field.Get(owner)));
                    break;
                case TableNode { Ignored: false } sub:
                    var child = WriteTable(sub.Children, sub.Get(owner));
                    if (child.Count > 0)
                    {
                        table.Add(sub.Key, child);
                    }

                    break;
                case MapNode map:
                    var entries = new TomlTable();
                    foreach (var (name, element) in map.GetEntries(owner))
                    {
                        entries.Add(name, WriteTable(map.Element, element));
                    }

                    table.Add(map.Key, entries);
                    break;
                case TableArrayNode array:
                    var items = new TomlTableArray();
                    foreach (var element in array.GetItems(owner))
                    {
                        items.Add(WriteTable(array.Element, element));
                    }

                    // An empty array of tables has no [[header]] form: written as `key = []` so the key still shows.
                    table.Add(array.Key, items.Count > 0 ? items : new TomlArray());
                    break;
                case PluginsNode plugins:
                    var sections = new TomlTable();
                    foreach (var plugin in plugins.Plugins)
                    {
                        sections.Add(plugin.Key, WriteTable(plugin.Children, plugin.Get((HullConfig)owner)));
                    }

                    table.Add(plugins.Key, sections);
                    break;
            }
        }

        return table;
    }
}
