using System.Collections;

namespace Hull.Config.Toml;

/// <summary>How a table came into existence. TOML's redefinition rules depend on it.</summary>
public enum TomlTableKind
{
    /// <summary>Defined by a <c>[header]</c> or <c>[[header]]</c> (and the default for tables built in code).</summary>
    Header,

    /// <summary>Created only as an intermediate of a header path such as <c>[a.b.c]</c>; may still be defined by a later <c>[a]</c>.</summary>
    Implicit,

    /// <summary>Created by a dotted key such as <c>a.b = 1</c>.</summary>
    Dotted,

    /// <summary>An inline table <c>{ ... }</c>; immutable once closed. The writer emits such tables inline.</summary>
    Inline,
}

/// <summary>
/// A TOML table: string keys in insertion order, mapped to string, long, double, bool,
/// <see cref="TomlDateTime"/>, <see cref="TomlArray"/> or <see cref="TomlTable"/>.
/// Parsed tables remember where each key was defined so configuration layers can point at it.
/// </summary>
public sealed class TomlTable : IReadOnlyDictionary<string, object>
{
    private readonly OrderedDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public TomlTable()
        : this(TomlTableKind.Header)
    {
    }

    public TomlTable(TomlTableKind kind) => Kind = kind;

    public TomlTableKind Kind { get; set; }

    /// <summary>Where this table was defined (its header key, dotted key or the key it is assigned to).</summary>
    public TomlPosition Position { get; internal set; }

    public int Count => _entries.Count;

    public IEnumerable<string> Keys => _entries.Keys;

    public IEnumerable<object> Values => _entries.Values.Select(e => e.Value);

    /// <summary>Gets a value, or adds/replaces one (replacing keeps the key's original position in the order).</summary>
    public object this[string key]
    {
        get => _entries.TryGetValue(key, out Entry entry) ? entry.Value : throw new KeyNotFoundException($"TOML key '{key}' not found.");
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            object normalized = TomlValues.Normalize(value);
            TomlPosition position = _entries.TryGetValue(key, out Entry old) ? old.Position : TomlPosition.None;
            _entries[key] = new Entry(normalized, position);
        }
    }

    public void Add(string key, object value)
    {
        ArgumentNullException.ThrowIfNull(key);
        _entries.Add(key, new Entry(TomlValues.Normalize(value), TomlPosition.None));
    }

    public bool Remove(string key) => _entries.Remove(key);

    public bool ContainsKey(string key) => _entries.ContainsKey(key);

    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out object value)
    {
        if (_entries.TryGetValue(key, out Entry entry))
        {
            value = entry.Value;
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>Typed lookup: true only when the key exists and holds a <typeparamref name="T"/>.</summary>
    public bool TryGetValue<T>(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out T value)
    {
        if (_entries.TryGetValue(key, out Entry entry) && entry.Value is T typed)
        {
            value = typed;
            return true;
        }

        value = default;
        return false;
    }

    /// <summary>Where <paramref name="key"/> was defined in the source, or <see cref="TomlPosition.None"/>.</summary>
    public TomlPosition GetPosition(string key) =>
        _entries.TryGetValue(key, out Entry entry) ? entry.Position : TomlPosition.None;

    public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
    {
        foreach (KeyValuePair<string, Entry> pair in _entries)
        {
            yield return new KeyValuePair<string, object>(pair.Key, pair.Value.Value);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // Parser-side insert: the value is already a TOML value, and the position is known.
    internal void AddParsed(string key, object value, TomlPosition position) =>
        _entries.Add(key, new Entry(value, position));

    internal void SetPosition(string key, TomlPosition position)
    {
        if (_entries.TryGetValue(key, out Entry entry))
        {
            _entries[key] = entry with { Position = position };
        }
    }

    private readonly record struct Entry(object Value, TomlPosition Position);
}
