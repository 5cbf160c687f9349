namespace Hull.Config.Toml;

/// <summary>Walks the decoded source one UTF-16 unit at a time, tracking line and column for messages.</summary>
internal sealed class TomlCursor
{
    public const int EndOfInput = -1;

    private readonly string _text;
    private int _line = 1;
    private int _column = 1;

    public TomlCursor(string text, int start, string? sourceName)
    {
        _text = text;
        Index = start;
        SourceName = sourceName;
    }

    public string? SourceName { get; }

    public int Index { get; private set; }

    /// <summary>Current 1-based position; the column counts Unicode scalar values, not UTF-16 units.</summary>
    public TomlPosition Position => new(_line, _column);

    public int Peek(int offset = 0)
    {
        int i = Index + offset;
        return i < _text.Length ? _text[i] : EndOfInput;
    }

    public bool Matches(string s) => _text.AsSpan(Index).StartsWith(s, StringComparison.Ordinal);

    public void Advance()
    {
        char c = _text[Index];
        if (c == '\n')
        {
            _line++;
            _column = 1;
        }
        else if (!char.IsLowSurrogate(c))
        {
            // A surrogate pair is one column: counted at its high half.
            _column++;
        }

        Index++;
    }

    public void Advance(int count)
    {
        for (int i = 0; i < count; i++)
        {
            Advance();
        }
    }

    public string Slice(int start, int end) => _text[start..end];

    public TomlException Error(string reason, string? key = null) => new(reason, SourceName, Position, key);

    public TomlException Error(TomlPosition position, string reason, string? key = null) => new(reason, SourceName, position, key);

    /// <summary>Describes the character at <paramref name="offset"/> for "expected X, found Y" messages.</summary>
    public string DescribeNext(int offset = 0)
    {
        int c = Peek(offset);
        int low = Peek(offset + 1);
        return c != EndOfInput && char.IsHighSurrogate((char)c) && low != EndOfInput && char.IsLowSurrogate((char)low)
            ? $"'{(char)c}{(char)low}' (U+{char.ConvertToUtf32((char)c, (char)low):X4})"
            : Describe(c);
    }

    public static string Describe(int c) => c switch
    {
        EndOfInput => "end of input",
        '\n' => "end of line",
        '\r' => "carriage return",
        '\t' => "tab",
        _ when TomlValues.IsControl(c) => $"control character U+{c:X4}",
        _ when c > 0x7F => $"'{(char)c}' (U+{c:X4})",
        _ => $"'{(char)c}'",
    };
}
