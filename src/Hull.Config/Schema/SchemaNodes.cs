using Tomlyn.Model;

namespace Hull.Config.Schema;

/// <summary>The TOML shape a key takes.</summary>
public enum ConfigValueType
{
    String,
    Integer,
    Boolean,
    /// <summary>A string in Go duration syntax: "5m", "30s", "4h0m0s", "1.5h", "100ms".</summary>
    Duration,
    StringList,
    /// <summary>A table of string values.</summary>
    StringMap,
    /// <summary>A table (free-form where the schema says nothing about its keys).</summary>
    Table,
    /// <summary>An array of tables.</summary>
    TableArray,
    /// <summary>Anything.</summary>
    Any,
}

/// <summary>What Hull does with a key.</summary>
public enum ConfigKeyUsage
{
    /// <summary>A containerd key Hull implements.</summary>
    Used,
    /// <summary>A key only Hull has.</summary>
    HullOnly,
    /// <summary>Still read, but deprecated in favour of another key.</summary>
    Deprecated,
    /// <summary>A containerd key Hull accepts and ignores (a warning when it is set to something else than its default).</summary>
    Ignored,
    /// <summary>A containerd 1.x key containerd 2.0 removed; ignored with a warning when set.</summary>
    Removed,
}

/// <summary>Helpers shared by the schema's delegates.</summary>
internal delegate void FieldCheck(object value, FieldContext context);

/// <summary>What a field check may do: report about the key being bound.</summary>
internal sealed class FieldContext(BindContext bind, Located at, object owner)
{
    public Located At { get; } = at;

    /// <summary>The model object the field was bound into (after binding).</summary>
    public object Owner { get; } = owner;

    public void Warn(ConfigDiagnosticKind kind, string message) => bind.Warn(kind, message, At);

    public void Error(ConfigDiagnosticKind kind, string message) => bind.Error(kind, message, At);

    public void Deprecate(string id, string message)
    {
        bind.Deprecate(id);
        bind.Warn(ConfigDiagnosticKind.Deprecated, $"{message} ({id})", At);
    }
}

internal abstract record SchemaNode(string Key, string Description);

/// <summary>A key Hull binds into the model.</summary>
internal sealed record FieldNode(string Key, string Description, ConfigValueType Type,
    Func<object, object>? Get, Func<object, object, object> Set) : SchemaNode(Key, Description)
{
    public ConfigKeyUsage Usage { get; init; } = ConfigKeyUsage.Used;

    /// <summary>What differs from containerd, or other remarks for the reference.</summary>
    public string? Note { get; init; }

    /// <summary>Recorded when the key is set to a non-empty value.</summary>
    public string? DeprecationId { get; init; }

    public FieldCheck? Check { get; init; }
}

/// <summary>A containerd key Hull accepts and does not use.</summary>
internal sealed record IgnoredNode(string Key, string Description, ConfigValueType Type) : SchemaNode(Key, Description)
{
    /// <summary>Marks <see cref="Default"/> for tables and arrays: reported when not empty.</summary>
    public static readonly object Empty = new();

    /// <summary>containerd's default (a model value such as <c>""</c>, <c>0</c>, <c>false</c>, <c>string[]</c>, or
    /// <see cref="Empty"/>); setting anything else is reported. Null: never reported.</summary>
    public object? Default { get; init; }

    /// <summary>Recorded when the key is set to something else than its default.</summary>
    public string? DeprecationId { get; init; }

    /// <summary>The warning to print when the key is set (gets the TOML value, its table and its path); null for the generic one.</summary>
    public Func<object, TomlTable, string, string?>? Explain { get; init; }
}

/// <summary>A containerd 1.x key that containerd 2.0 removed.</summary>
internal sealed record RemovedNode(string Key, string Description, string Advice) : SchemaNode(Key, Description)
{
    /// <summary>Extra checks on the TOML value (deprecations it implies).</summary>
    public Action<object, FieldContext>? Check { get; init; }
}

/// <summary>A fixed sub-table; <see cref="Get"/>/<see cref="Set"/> reach the model object its keys bind into.</summary>
internal sealed record TableNode(string Key, string Description, IReadOnlyList<SchemaNode> Children,
    Func<object, object> Get, Func<object, object, object> Set) : SchemaNode(Key, Description)
{
    /// <summary>When true for the owner (after its scalar keys are bound), keys the schema does not know are
    /// passed through and reported as unused instead of unknown (runtime options of non-runc runtimes).</summary>
    public Func<object, bool>? IsOpen { get; init; }

    /// <summary>The table itself is not read by Hull (all of its keys are ignored).</summary>
    public bool Ignored { get; init; }
}

/// <summary>A table of named entries that all share one schema (<c>containerd.runtimes.&lt;name&gt;</c>).</summary>
internal sealed record MapNode(string Key, string Description, IReadOnlyList<SchemaNode> Element,
    Func<object, IReadOnlyList<KeyValuePair<string, object>>> GetEntries,
    Func<object, IReadOnlyList<KeyValuePair<string, object>>, object> SetEntries,
    Func<object> NewElement) : SchemaNode(Key, Description)
{
    public string ElementName { get; init; } = "<name>";
}

/// <summary>An array of tables that all share one schema (<c>unpack_config</c>).</summary>
internal sealed record TableArrayNode(string Key, string Description, IReadOnlyList<SchemaNode> Element,
    Func<object, IReadOnlyList<object>> GetItems, Func<object, IReadOnlyList<object>, object> SetItems,
    Func<object> NewElement) : SchemaNode(Key, Description);

/// <summary>One <c>[plugins.'&lt;id&gt;']</c> section Hull implements.</summary>
internal sealed record PluginNode(string Key, string Description, IReadOnlyList<SchemaNode> Children,
    Func<HullConfig, object> Get, Func<HullConfig, object, HullConfig> Set) : SchemaNode(Key, Description);

/// <summary>The <c>[plugins]</c> table.</summary>
internal sealed record PluginsNode(string Key, string Description, IReadOnlyList<PluginNode> Plugins,
    IReadOnlyList<string> ContainerdPlugins) : SchemaNode(Key, Description);
