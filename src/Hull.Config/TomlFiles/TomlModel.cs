using System.Diagnostics.CodeAnalysis;
using Tomlyn.Model;

namespace Hull.Config.TomlFiles;

/// <summary>Typed access to Tomlyn's model: string, long, double, bool, TomlDateTime, TomlArray, TomlTable, TomlTableArray.</summary>
internal static class TomlModel
{
    /// <summary>True only when the key exists and holds a <typeparamref name="T"/>.</summary>
    public static bool TryGetValue<T>(this TomlTable table, string key, [MaybeNullWhen(false)] out T value)
    {
        if (table.TryGetValue(key, out object? found) && found is T typed)
        {
            value = typed;
            return true;
        }

        value = default;
        return false;
    }

    /// <summary>
    /// The tables of an array of tables: a <c>[[header]]</c> array, or an inline array whose elements are all
    /// inline tables (TOML does not tell them apart by meaning). Null for anything else.
    /// </summary>
    public static IReadOnlyList<TomlTable>? AsTables(object value) => value switch
    {
        TomlTableArray tables => tables.ToList(),
        TomlArray array when array.All(e => e is TomlTable) => array.Cast<TomlTable>().ToList(),
        _ => null,
    };

    public static TomlArray StringArray(IEnumerable<string> items)
    {
        var array = new TomlArray();
        foreach (string item in items)
        {
            array.Add(item);
        }

        return array;
    }
}
