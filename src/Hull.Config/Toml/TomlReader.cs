namespace Hull.Config.Toml;

/// <summary>
/// Recursive-descent reader for the TOML 1.0.0 grammar. It validates syntax and produces values;
/// all table definition rules live in <see cref="TomlTableBuilder"/>.
/// </summary>
internal sealed partial class TomlReader
{
    // Deep enough for any real config, shallow enough that hostile input cannot overflow the stack.
    private const int MaxNesting = 256;

    private readonly TomlCursor _c;
    private readonly TomlTableBuilder _builder;
    private int _depth;

    public TomlReader(string text, int start, string? sourceName)
    {
        _c = new TomlCursor(text, start, sourceName);
        _builder = new TomlTableBuilder(sourceName);
    }

    public TomlTable ReadDocument()
    {
        while (true)
        {
            SkipWhitespace();
            switch (_c.Peek())
            {
                case TomlCursor.EndOfInput:
                    return _builder.Root;
                case '[':
                    ReadHeader();
                    ReadLineEnd("after the table header");
                    break;
                case '#' or '\n' or '\r':
                    ReadLineEnd("after the comment");
                    break;
                default:
                    ReadKeyValue(_builder.Current);
                    ReadLineEnd("after the value");
                    break;
            }
        }
    }

    /// <summary>Consumes optional whitespace and comment, then a newline or the end of input.</summary>
    private void ReadLineEnd(string context)
    {
        SkipWhitespace();
        if (_c.Peek() == '#')
        {
            SkipComment();
        }

        switch (_c.Peek())
        {
            case TomlCursor.EndOfInput:
                return;
            case '\n':
                _c.Advance();
                return;
            case '\r' when _c.Peek(1) == '\n':
                _c.Advance(2);
                return;
            case '\r':
                throw BareCarriageReturn();
            default:
                throw _c.Error($"expected a newline {context}, found {_c.DescribeNext()}");
        }
    }

    private void ReadHeader()
    {
        TomlPosition open = _c.Position;
        _c.Advance();
        bool arrayOfTables = _c.Peek() == '[';
        if (arrayOfTables)
        {
            _c.Advance();
        }

        List<TomlKeySegment> path = ReadKey();
        if (arrayOfTables)
        {
            if (_c.Peek() != ']' || _c.Peek(1) != ']')
            {
                throw _c.Error($"expected ']]' to close the array-of-tables header opened at line {open.Line}, column {open.Column}, found {_c.DescribeNext()}");
            }

            _c.Advance(2);
            _builder.AppendArrayTable(path);
        }
        else
        {
            if (_c.Peek() != ']')
            {
                throw _c.Error($"expected ']' to close the table header opened at line {open.Line}, column {open.Column}, found {_c.DescribeNext()}");
            }

            _c.Advance();
            _builder.DefineTable(path);
        }
    }

    private void ReadKeyValue(TomlTable target)
    {
        List<TomlKeySegment> path = ReadKey();
        if (_c.Peek() != '=')
        {
            string key = TomlValues.FormatKeyPath(path.Select(s => s.Name));
            throw _c.Error($"expected '=' after key `{key}`, found {_c.DescribeNext()}", key);
        }

        _c.Advance();
        SkipWhitespace();
        object value = ReadValue();
        _builder.SetValue(target, path, value);
    }

    /// <summary>Reads a possibly dotted key, including surrounding spaces/tabs.</summary>
    private List<TomlKeySegment> ReadKey()
    {
        var segments = new List<TomlKeySegment>();
        while (true)
        {
            SkipWhitespace();
            segments.Add(ReadSimpleKey());
            SkipWhitespace();
            if (_c.Peek() != '.')
            {
                return segments;
            }

            _c.Advance();
        }
    }

    private TomlKeySegment ReadSimpleKey()
    {
        TomlPosition position = _c.Position;
        int ch = _c.Peek();
        if (ch == '"')
        {
            if (_c.Matches("\"\"\""))
            {
                throw _c.Error("multi-line strings cannot be used as keys");
            }

            return new TomlKeySegment(ReadBasicString(), position);
        }

        if (ch == '\'')
        {
            if (_c.Matches("'''"))
            {
                throw _c.Error("multi-line strings cannot be used as keys");
            }

            return new TomlKeySegment(ReadLiteralString(), position);
        }

        int start = _c.Index;
        while (TomlValues.IsBareKeyChar(_c.Peek()))
        {
            _c.Advance();
        }

        if (_c.Index == start)
        {
            throw _c.Error($"expected a key, found {_c.DescribeNext()} (bare keys may only contain A-Z, a-z, 0-9, '_' and '-')");
        }

        return new TomlKeySegment(_c.Slice(start, _c.Index), position);
    }

    private object ReadValue()
    {
        switch (_c.Peek())
        {
            case '"':
                return _c.Matches("\"\"\"") ? ReadMultilineBasicString() : ReadBasicString();
            case '\'':
                return _c.Matches("'''") ? ReadMultilineLiteralString() : ReadLiteralString();
            case '[':
                return ReadArray();
            case '{':
                return ReadInlineTable();
            default:
                return ReadScalarToken();
        }
    }

    /// <summary>Booleans, numbers and date-times: an unquoted run of characters, validated as a whole.</summary>
    private object ReadScalarToken()
    {
        TomlPosition position = _c.Position;
        int start = _c.Index;
        while (IsScalarChar(_c.Peek()))
        {
            _c.Advance();
        }

        // "1979-05-27 07:32:00": a date followed by a space and a time is a single date-time.
        if (IsFullDate(start, _c.Index) && _c.Peek() == ' ' && IsAsciiDigit(_c.Peek(1)) && IsAsciiDigit(_c.Peek(2)) && _c.Peek(3) == ':')
        {
            _c.Advance();
            while (IsScalarChar(_c.Peek()))
            {
                _c.Advance();
            }
        }

        if (_c.Index == start)
        {
            throw _c.Error($"expected a value, found {_c.DescribeNext()}");
        }

        string token = _c.Slice(start, _c.Index);
        switch (token)
        {
            case "true":
                return true;
            case "false":
                return false;
        }

        if (LooksLikeDateTime(token))
        {
            return TomlDateTimeParser.TryParse(token, out TomlDateTime dateTime, out string? dateError)
                ? dateTime
                : throw _c.Error(position, $"invalid date-time '{token}': {dateError}");
        }

        if (IsAsciiDigit(token[0]) || token[0] is '+' or '-' || token.StartsWith("inf", StringComparison.Ordinal) || token.StartsWith("nan", StringComparison.Ordinal))
        {
            return TomlNumberParser.TryParse(token, out object? number, out string? numberError)
                ? number
                : throw _c.Error(position, $"invalid number: {numberError}");
        }

        throw _c.Error(position, $"invalid value '{token}' (strings must be quoted; booleans are lowercase 'true'/'false')");
    }

    private object ReadArray()
    {
        TomlPosition open = _c.Position;
        _c.Advance();
        EnterNesting();
        var array = new TomlArray();
        while (true)
        {
            SkipWhitespaceCommentsAndNewlines();
            if (_c.Peek() == ']')
            {
                _c.Advance();
                break;
            }

            array.AddParsed(ReadValue());
            SkipWhitespaceCommentsAndNewlines();
            int ch = _c.Peek();
            if (ch == ',')
            {
                _c.Advance();
                continue;
            }

            if (ch == ']')
            {
                _c.Advance();
                break;
            }

            throw _c.Error(ch == TomlCursor.EndOfInput
                ? $"unterminated array opened at line {open.Line}, column {open.Column}"
                : $"expected ',' or ']' after an array element, found {_c.DescribeNext()}");
        }

        _depth--;
        return array;
    }

    private TomlTable ReadInlineTable()
    {
        TomlPosition open = _c.Position;
        _c.Advance();
        EnterNesting();
        var table = new TomlTable(TomlTableKind.Inline) { Position = open };
        SkipWhitespace();
        if (_c.Peek() == '}')
        {
            _c.Advance();
            _depth--;
            return table;
        }

        while (true)
        {
            RequireInlineTableContinues(open);
            ReadKeyValue(table);
            SkipWhitespace();
            int ch = _c.Peek();
            if (ch == ',')
            {
                _c.Advance();
                SkipWhitespace();
                if (_c.Peek() == '}')
                {
                    throw _c.Error("trailing comma is not allowed in an inline table");
                }

                continue;
            }

            if (ch == '}')
            {
                _c.Advance();
                break;
            }

            RequireInlineTableContinues(open);
            throw _c.Error($"expected ',' or '}}' in inline table, found {_c.DescribeNext()}");
        }

        _depth--;
        return table;
    }

    // Inline tables must fit on one line (TOML 1.0), so a newline or comment means it was left open.
    private void RequireInlineTableContinues(TomlPosition open)
    {
        if (_c.Peek() is '\n' or '\r' or '#' or TomlCursor.EndOfInput)
        {
            throw _c.Error($"inline table opened at line {open.Line}, column {open.Column} must be closed with '}}' on the same line");
        }
    }

    private void EnterNesting()
    {
        if (++_depth > MaxNesting)
        {
            throw _c.Error($"arrays and inline tables are nested more than {MaxNesting} levels deep");
        }
    }

    private void SkipWhitespace()
    {
        while (_c.Peek() is ' ' or '\t')
        {
            _c.Advance();
        }
    }

    private void SkipWhitespaceCommentsAndNewlines()
    {
        while (true)
        {
            switch (_c.Peek())
            {
                case ' ' or '\t' or '\n':
                    _c.Advance();
                    break;
                case '\r' when _c.Peek(1) == '\n':
                    _c.Advance(2);
                    break;
                case '\r':
                    throw BareCarriageReturn();
                case '#':
                    SkipComment();
                    break;
                default:
                    return;
            }
        }
    }

    private void SkipComment()
    {
        _c.Advance();
        while (true)
        {
            int ch = _c.Peek();
            if (ch is TomlCursor.EndOfInput or '\n' or '\r')
            {
                return;
            }

            if (TomlValues.IsControl(ch))
            {
                throw _c.Error($"{TomlCursor.Describe(ch)} is not allowed in a comment");
            }

            _c.Advance();
        }
    }

    private TomlException BareCarriageReturn() =>
        _c.Error("carriage return must be followed by a line feed (bare CR line endings are not allowed)");

    private static bool IsScalarChar(int c) =>
        c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '+' or '-' or '.' or ':';

    private static bool IsAsciiDigit(int c) => c is >= '0' and <= '9';

    private bool IsFullDate(int start, int end)
    {
        if (end - start != 10)
        {
            return false;
        }

        string s = _c.Slice(start, end);
        for (int i = 0; i < s.Length; i++)
        {
            if (i is 4 or 7 ? s[i] != '-' : !IsAsciiDigit(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    // Times contain ':'; dates start with digits followed by '-' (unlike "1e-5" or "-5").
    private static bool LooksLikeDateTime(string token)
    {
        if (token.Contains(':'))
        {
            return true;
        }

        int dash = token.IndexOf('-');
        if (dash <= 0)
        {
            return false;
        }

        for (int i = 0; i < dash; i++)
        {
            if (!IsAsciiDigit(token[i]))
            {
                return false;
            }
        }

        return true;
    }
}
