using System.Collections;

namespace Hull.Config.Toml;

/// <summary>
/// A TOML array. Elements may be of mixed types (TOML 1.0). <see cref="IsArrayOfTables"/> marks
/// arrays built from <c>[[header]]</c> sections: only those may be appended to by later headers,
/// and the writer emits them as <c>[[header]]</c> sections again.
/// </summary>
public sealed class TomlArray : IReadOnlyList<object>
{
    private readonly List<object> _items = [];

    public TomlArray()
    {
    }

    public TomlArray(bool isArrayOfTables) => IsArrayOfTables = isArrayOfTables;

    public TomlArray(IEnumerable<object> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (object item in items)
        {
            Add(item);
        }
    }

    public bool IsArrayOfTables { get; set; }

    public int Count => _items.Count;

    public object this[int index]
    {
        get => _items[index];
        set => _items[index] = TomlValues.Normalize(value);
    }

    public void Add(object value) => _items.Add(TomlValues.Normalize(value));

    public void RemoveAt(int index) => _items.RemoveAt(index);

    public IEnumerator<object> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal void AddParsed(object value) => _items.Add(value);
}
