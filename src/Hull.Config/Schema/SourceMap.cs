using System.Text;
using Hull.Config.Toml;

namespace Hull.Config.Schema;

/// <summary>Where a key was written: its path as the file spells it, and its line:column.</summary>
internal readonly record struct Located(string Path, TomlPosition Position);

/// <summary>
/// Remembers, for every table of a parsed file, the key path it had in the file, and for values that
/// migration moved to another table, where they came from. Diagnostics about a migrated version 2
/// file so point at the line the operator wrote, with the key path they wrote.
/// </summary>
internal sealed class SourceMap
{
    private readonly Dictionary<TomlTable, string> _tablePaths = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<TomlTable, Dictionary<string, Located>> _moved = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<TomlTable, List<string>> _formerKeys = new(ReferenceEqualityComparer.Instance);

    public static SourceMap Build(TomlTable root)
    {
        var map = new SourceMap();
        map.Walk(root, "", overwrite: true);
        return map;
    }

    /// <summary>The path of a table as written in the file (or as created by migration).</summary>
    public string PathOf(TomlTable table) => _tablePaths.TryGetValue(table, out var path) ? path : "";

    /// <summary>Records the path of a table created by migration (tables moved into it keep the path they were written at).</summary>
    public void Register(TomlTable table, string path) => Walk(table, path, overwrite: false);

    /// <summary>Where <paramref name="key"/> of <paramref name="table"/> was written.</summary>
    public Located Locate(TomlTable table, string key)
    {
        if (_moved.TryGetValue(table, out var moved) && moved.TryGetValue(key, out var origin))
        {
            return origin;
        }

        TomlPosition position = table.GetPosition(key);
        if (!position.IsKnown && table.TryGetValue(key, out object? value) && value is TomlTable sub)
        {
            position = sub.Position;
        }

        return new Located(Join(PathOf(table), key), position);
    }

    /// <summary>Records that <paramref name="to"/>.<paramref name="toKey"/> holds what was written at <paramref name="from"/>.<paramref name="fromKey"/>; call before removing the source.</summary>
    public void RecordMove(TomlTable from, string fromKey, TomlTable to, string toKey)
    {
        var origin = Locate(from, fromKey);
        if (!_moved.TryGetValue(to, out var moved))
        {
            _moved[to] = moved = new Dictionary<string, Located>(StringComparer.Ordinal);
        }

        moved[toKey] = origin;
    }

    /// <summary>Keys that were valid in <paramref name="table"/> before migration moved them elsewhere (for "did you mean").</summary>
    public void AddFormerKeys(TomlTable table, IEnumerable<string> keys)
    {
        if (!_formerKeys.TryGetValue(table, out var list))
        {
            _formerKeys[table] = list = [];
        }

        list.AddRange(keys);
    }

    public IReadOnlyList<string> FormerKeys(TomlTable table) => _formerKeys.TryGetValue(table, out var list) ? list : [];

    public static string Join(string path, string key) => path.Length == 0 ? FormatKey(key) : path + "." + FormatKey(key);

    /// <summary>A key as TOML needs it written: bare when it can be, double-quoted otherwise.</summary>
    public static string FormatKey(string key)
    {
        bool bare = key.Length > 0;
        foreach (char c in key)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                bare = false;
                break;
            }
        }

        if (bare)
        {
            return key;
        }

        var sb = new StringBuilder("\"");
        foreach (char c in key)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when c < 0x20 || c == 0x7F => $"\\u{(int)c:X4}",
                _ => c.ToString(),
            });
        }

        return sb.Append('"').ToString();
    }

    public static string FormatPath(IEnumerable<string> keys) => string.Join('.', keys.Select(FormatKey));

    private void Walk(TomlTable table, string path, bool overwrite)
    {
        if (!overwrite && _tablePaths.ContainsKey(table))
        {
            return;
        }

        _tablePaths[table] = path;
        foreach (var (key, value) in table)
        {
            string childPath = Join(path, key);
            switch (value)
            {
                case TomlTable sub:
                    Walk(sub, childPath, overwrite);
                    break;
                case TomlArray array:
                    for (int i = 0; i < array.Count; i++)
                    {
                        if (array[i] is TomlTable element)
                        {
                            Walk(element, $"{childPath}[{i}]", overwrite);
                        }
                    }

                    break;
            }
        }
    }
}
