namespace Hull.Config.Toml;

/// <summary>
/// The single exception type raised for malformed TOML. <see cref="Exception.Message"/> has the
/// shape "source:line:column: reason", so it can be shown to an operator unchanged.
/// </summary>
public sealed class TomlException : Exception
{
    public TomlException(string reason, string? sourceName, TomlPosition position, string? key = null)
        : base(Format(reason, sourceName, position))
    {
        Reason = reason;
        SourceName = sourceName;
        Line = position.Line;
        Column = position.Column;
        Key = key;
    }

    /// <summary>What is wrong, without the location prefix.</summary>
    public string Reason { get; }

    public string? SourceName { get; }

    /// <summary>1-based line of the error (0 if unknown).</summary>
    public int Line { get; }

    /// <summary>1-based column of the error, in Unicode scalar values (0 if unknown).</summary>
    public int Column { get; }

    /// <summary>The offending key as written (dotted, quoted where needed), when the error concerns a key.</summary>
    public string? Key { get; }

    public TomlPosition Position => new(Line, Column);

    private static string Format(string reason, string? sourceName, TomlPosition position)
    {
        string source = sourceName ?? "<toml>";
        return position.IsKnown ? $"{source}:{position.Line}:{position.Column}: {reason}" : $"{source}: {reason}";
    }
}
