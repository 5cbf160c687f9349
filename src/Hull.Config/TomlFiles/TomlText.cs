using System.Buffers;
using Tomlyn;
using Tomlyn.Helpers;
using Tomlyn.Model;

namespace Hull.Config.TomlFiles;

/// <summary>Writes TOML through Tomlyn's serializer: config files (<c>hulld config dump|default|migrate</c>) and single values (docs, messages).</summary>
internal static class TomlText
{
    private static readonly SearchValues<char> BareKeyChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

    private static readonly TomlSerializerOptions Options = new()
    {
        NewLine = TomlNewLineKind.Lf,
        BlankLineBeforeTableHeaders = true,
        // Plugin IDs such as io.containerd.cri.v1.runtime are single keys (written quoted), not paths.
        DottedKeyHandling = TomlDottedKeyHandling.Literal,
    };

    /// <summary>
    /// The tree as a TOML document: sub-tables become <c>[a.b]</c> sections, arrays of tables <c>[[a.b]]</c> sections,
    /// inline tables and arrays stay inline. An empty <see cref="TomlTableArray"/> has no header form and Tomlyn writes
    /// nothing for it: put an empty <see cref="TomlArray"/> where the key must appear.
    /// </summary>
    public static string Write(TomlTable table) => TomlSerializer.Serialize(table, Options);

    /// <summary>One value in inline syntax: <c>"text"</c>, <c>3</c>, <c>true</c>, <c>["a", "b"]</c>, <c>{}</c>.</summary>
    public static string FormatValue(object value) => value switch
    {
        string s => TomlFormatHelper.ToString(s, TomlPropertyDisplayKind.Default),
        long l => TomlFormatHelper.ToString(l, TomlPropertyDisplayKind.Default),
        double d => TomlFormatHelper.ToString(d),
        bool b => TomlFormatHelper.ToString(b),
        TomlDateTime dt => TomlFormatHelper.ToString(dt),
        TomlArray array => "[" + string.Join(", ", array.Select(item => FormatValue(item!))) + "]",
        TomlTable { Count: 0 } => "{}",
        TomlTable table => "{ " + string.Join(", ", table.Select(e => $"{FormatKey(e.Key)} = {FormatValue(e.Value)}")) + " }",
        _ => throw new ArgumentException($"no TOML form for {value.GetType()}", nameof(value)),
    };

    /// <summary>A key as TOML needs it written: bare when it can be, double-quoted otherwise.</summary>
    public static string FormatKey(string key) =>
        key.Length > 0 && !key.AsSpan().ContainsAnyExcept(BareKeyChars) ? key : FormatValue(key);
}
