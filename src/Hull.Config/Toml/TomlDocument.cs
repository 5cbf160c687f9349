namespace Hull.Config.Toml;

/// <summary>The result of parsing one TOML source: its root table plus where it came from.</summary>
public sealed class TomlDocument
{
    public TomlDocument(TomlTable root, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        Root = root;
        SourceName = sourceName;
    }

    public TomlTable Root { get; }

    /// <summary>File name or other label used in error messages; null when parsed from an anonymous string.</summary>
    public string? SourceName { get; }
}
