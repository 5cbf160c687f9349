namespace Hull.Config.Schema;

/// <summary>Typed constructors for schema nodes, so <see cref="ConfigSchema"/> reads as a list of keys.</summary>
internal static class SchemaBuilders
{
    public static FieldNode Str<T>(string key, Func<T, string> get, Func<T, string, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.String, o => get((T)o), (o, v) => set((T)o, (string)v));

    public static FieldNode Int<T>(string key, Func<T, int> get, Func<T, int, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.Integer, o => get((T)o), (o, v) => set((T)o, (int)v));

    public static FieldNode Float<T>(string key, Func<T, double> get, Func<T, double, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.Float, o => get((T)o), (o, v) => set((T)o, (double)v));

    public static FieldNode Bool<T>(string key, Func<T, bool> get, Func<T, bool, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.Boolean, o => get((T)o), (o, v) => set((T)o, (bool)v));

    public static FieldNode Dur<T>(string key, Func<T, TimeSpan> get, Func<T, TimeSpan, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.Duration, o => get((T)o), (o, v) => set((T)o, (TimeSpan)v));

    public static FieldNode List<T>(string key, Func<T, IReadOnlyList<string>> get, Func<T, IReadOnlyList<string>, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.StringList, o => get((T)o), (o, v) => set((T)o, (IReadOnlyList<string>)v));

    public static FieldNode StrMap<T>(string key, Func<T, IReadOnlyDictionary<string, string>> get,
        Func<T, IReadOnlyDictionary<string, string>, T> set, string description) where T : class =>
        new(key, description, ConfigValueType.StringMap, o => get((T)o), (o, v) => set((T)o, (IReadOnlyDictionary<string, string>)v));

    /// <summary>A sub-table bound into its own model record.</summary>
    public static TableNode Table<T, TChild>(string key, string description, Func<T, TChild> get, Func<T, TChild, T> set, params SchemaNode[] children)
        where T : class where TChild : class =>
        new(key, description, children, o => get((T)o), (o, v) => set((T)o, (TChild)v));

    /// <summary>A sub-table whose keys bind into the same model record as its parent's.</summary>
    public static TableNode Same(string key, string description, params SchemaNode[] children) =>
        new(key, description, children, o => o, (_, v) => v);

    /// <summary>A table Hull does not read at all; its keys are listed so that typos are still caught.</summary>
    public static TableNode IgnoredTable(string key, string description, params SchemaNode[] children) =>
        new(key, description, children, o => o, (_, v) => v) { Ignored = true };

    public static IgnoredNode Ignored(string key, ConfigValueType type, object? defaultValue, string description) =>
        new(key, description, type) { Default = defaultValue };

    public static RemovedNode Removed(string key, string advice) => new(key, "", advice);

    public static MapNode Map<T, TElement>(string key, string description, Func<T, IReadOnlyDictionary<string, TElement>> get,
        Func<T, IReadOnlyDictionary<string, TElement>, T> set, Func<TElement> create, params SchemaNode[] element)
        where T : class where TElement : class =>
        new(key, description, element,
            o => get((T)o).Select(e => new KeyValuePair<string, object>(e.Key, e.Value)).ToList(),
            (o, entries) => set((T)o, entries.ToDictionary(e => e.Key, e => (TElement)e.Value, StringComparer.Ordinal)),
            () => create());

    public static TableArrayNode Array<T, TElement>(string key, string description, Func<T, IReadOnlyList<TElement>> get,
        Func<T, IReadOnlyList<TElement>, T> set, Func<TElement> create, params SchemaNode[] element)
        where T : class where TElement : class =>
        new(key, description, element, o => get((T)o).Cast<object>().ToList(), (o, items) => set((T)o, items.Cast<TElement>().ToList()), () => create());

    public static PluginNode Plugin<TSection>(string id, string description, Func<HullConfig, TSection> get,
        Func<HullConfig, TSection, HullConfig> set, params SchemaNode[] children) where TSection : class =>
        new(id, description, children, c => get(c), (c, v) => set(c, (TSection)v));
}
