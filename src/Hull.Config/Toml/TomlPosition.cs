namespace Hull.Config.Toml;

/// <summary>A 1-based line/column location in TOML source. Columns count Unicode scalar values.</summary>
public readonly record struct TomlPosition(int Line, int Column)
{
    /// <summary>Values built in code (not parsed) carry no position.</summary>
    public static TomlPosition None => default;

    public bool IsKnown => Line > 0;

    public override string ToString() => IsKnown ? $"{Line}:{Column}" : "?";
}
