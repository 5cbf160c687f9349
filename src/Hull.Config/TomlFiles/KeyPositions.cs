using Tomlyn.Model;

namespace Hull.Config.TomlFiles;

/// <summary>A 1-based line and column in a config file; columns count Unicode scalar values, as Tomlyn does.</summary>
internal readonly record struct SourcePosition(int Line, int Column)
{
    /// <summary>Values built in code (not read from a file) have no position.</summary>
    public static SourcePosition None => default;

    public bool IsKnown => Line > 0;

    /// <summary>From Tomlyn's 0-based <see cref="Tomlyn.Syntax.TextPosition"/>.</summary>
    public static SourcePosition From(Tomlyn.Syntax.TextPosition position) => new(position.Line + 1, position.Column + 1);

    /// <summary>The position just after <paramref name="text"/>, read from this position on.</summary>
    public SourcePosition After(ReadOnlySpan<char> text)
    {
        var (line, column) = (Line, Column);
        foreach (char c in text)
        {
            if (c == '\n')
            {
                (line, column) = (line + 1, 1);
            }
            else if (!char.IsLowSurrogate(c))
            {
                column++;
            }
        }

        return new SourcePosition(line, column);
    }

    public override string ToString() => IsKnown ? $"{Line}:{Column}" : "?";
}

/// <summary>
/// Where each key of a parsed tree was written: the key itself for values and inline tables, the header key for
/// <c>[tables]</c> and <c>[[arrays of tables]]</c>, the first path segment that created an implicit table.
/// Tomlyn's model tables carry no positions, so they are kept here, by table instance.
/// </summary>
internal sealed class KeyPositions
{
    // Tomlyn's tables do not override Equals: the table part of the key compares by reference.
    private readonly Dictionary<(TomlTable Table, string Key), SourcePosition> _positions = [];

    public void Set(TomlTable table, string key, SourcePosition position) => _positions[(table, key)] = position;

    /// <summary>Where <paramref name="key"/> of <paramref name="table"/> was written, or <see cref="SourcePosition.None"/>.</summary>
    public SourcePosition Get(TomlTable table, string key) => _positions.GetValueOrDefault((table, key));
}
