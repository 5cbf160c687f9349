using Hull.Config.TomlFiles;
using Tomlyn.Model;

namespace Hull.Config.Schema;

/// <summary>Where a key was written: its path as the file spells it, and its line:column.</summary>
internal readonly record struct Located(string Path, SourcePosition Position);

/// <summary>
/// Remembers, for every table of a parsed file, the key path it had in the file, and for values that
/// migration moved to another table, where they came from. Diagnostics about a migrated version 2
/// file so point at the line the operator wrote, with the key path they wrote.
/// </summary>
internal sealed class SourceMap(KeyPositions positions)
{
    private readonly Dictionary<TomlTable, string> _tablePaths = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<TomlTable, Dictionary<string, Located>> _moved = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<TomlTable, List<string>> _formerKeys = new(ReferenceEqualityComparer.Instance);

    public static SourceMap Build(ConfigDocument document)
    {
        var map = new SourceMap(document.Positions);
        map.Walk(document.Root, "", overwrite: true);
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

        return new Located(Join(PathOf(table), key), positions.Get(table, key));
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

    public static string Join(string path, string key) => path.Length == 0 ? TomlText.FormatKey(key) : path + "." + TomlText.FormatKey(key);

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
                default:
                    var elements = TomlModel.AsTables(value) ?? [];
                    for (int i = 0; i < elements.Count; i++)
                    {
                        Walk(elements[i], $"{childPath}[{i}]", overwrite);
                    }

                    break;
            }
        }
    }
}
