using System.Globalization;
using System.Text;

namespace Hull.Config.Toml;

/// <summary>The four TOML string forms.</summary>
internal sealed partial class TomlReader
{
    private string ReadBasicString()
    {
        TomlPosition open = _c.Position;
        _c.Advance();
        var sb = new StringBuilder();
        while (true)
        {
            int ch = _c.Peek();
            switch (ch)
            {
                case TomlCursor.EndOfInput or '\n' or '\r':
                    throw _c.Error(open, "unterminated string (single-line strings cannot span lines; use \"\"\" for multi-line strings)");
                case '"':
                    _c.Advance();
                    return sb.ToString();
                case '\\':
                    ReadEscape(sb);
                    break;
                default:
                    AppendContent(sb, ch, "strings");
                    break;
            }
        }
    }

    private string ReadMultilineBasicString()
    {
        TomlPosition open = _c.Position;
        _c.Advance(3);
        SkipNewlineAfterOpeningDelimiter();
        var sb = new StringBuilder();
        while (true)
        {
            int ch = _c.Peek();
            switch (ch)
            {
                case TomlCursor.EndOfInput:
                    throw _c.Error(open, "unterminated multi-line string");
                case '"':
                    if (ReadQuoteRun(sb, '"'))
                    {
                        return sb.ToString();
                    }

                    break;
                case '\\':
                    if (!TrySkipLineEndingBackslash())
                    {
                        ReadEscape(sb);
                    }

                    break;
                default:
                    AppendMultilineContent(sb, ch);
                    break;
            }
        }
    }

    private string ReadLiteralString()
    {
        TomlPosition open = _c.Position;
        _c.Advance();
        var sb = new StringBuilder();
        while (true)
        {
            int ch = _c.Peek();
            switch (ch)
            {
                case TomlCursor.EndOfInput or '\n' or '\r':
                    throw _c.Error(open, "unterminated literal string (single-line strings cannot span lines; use ''' for multi-line strings)");
                case '\'':
                    _c.Advance();
                    return sb.ToString();
                default:
                    AppendContent(sb, ch, "literal strings");
                    break;
            }
        }
    }

    private string ReadMultilineLiteralString()
    {
        TomlPosition open = _c.Position;
        _c.Advance(3);
        SkipNewlineAfterOpeningDelimiter();
        var sb = new StringBuilder();
        while (true)
        {
            int ch = _c.Peek();
            switch (ch)
            {
                case TomlCursor.EndOfInput:
                    throw _c.Error(open, "unterminated multi-line literal string");
                case '\'':
                    if (ReadQuoteRun(sb, '\''))
                    {
                        return sb.ToString();
                    }

                    break;
                default:
                    AppendMultilineContent(sb, ch);
                    break;
            }
        }
    }

    // A newline immediately after the opening delimiter is trimmed.
    private void SkipNewlineAfterOpeningDelimiter()
    {
        if (_c.Peek() == '\n')
        {
            _c.Advance();
        }
        else if (_c.Peek() == '\r' && _c.Peek(1) == '\n')
        {
            _c.Advance(2);
        }
    }

    /// <summary>
    /// Handles a run of quote characters inside a multi-line string. Fewer than three are content;
    /// three or more close the string, with up to two extra quotes belonging to the content.
    /// Returns true when the string is closed.
    /// </summary>
    private bool ReadQuoteRun(StringBuilder sb, char quote)
    {
        int run = 0;
        while (_c.Peek(run) == quote)
        {
            run++;
        }

        if (run < 3)
        {
            sb.Append(quote, run);
            _c.Advance(run);
            return false;
        }

        if (run > 5)
        {
            throw _c.Error($"too many consecutive {quote} characters in multi-line string (at most two may precede the closing delimiter)");
        }

        sb.Append(quote, run - 3);
        _c.Advance(run);
        return true;
    }

    /// <summary>
    /// A backslash that is the last non-whitespace character on a line trims it, the newline and
    /// all following whitespace/newlines. Returns false when the backslash starts an ordinary escape.
    /// </summary>
    private bool TrySkipLineEndingBackslash()
    {
        int k = 1;
        while (_c.Peek(k) is ' ' or '\t')
        {
            k++;
        }

        if (!(_c.Peek(k) == '\n' || (_c.Peek(k) == '\r' && _c.Peek(k + 1) == '\n')))
        {
            return false;
        }

        _c.Advance(k);
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
                default:
                    return true;
            }
        }
    }

    private void AppendMultilineContent(StringBuilder sb, int ch)
    {
        if (ch == '\n')
        {
            sb.Append('\n');
            _c.Advance();
        }
        else if (ch == '\r')
        {
            if (_c.Peek(1) != '\n')
            {
                throw BareCarriageReturn();
            }

            // CRLF is normalised to LF so values do not depend on the file's line endings.
            sb.Append('\n');
            _c.Advance(2);
        }
        else
        {
            AppendContent(sb, ch, "strings");
        }
    }

    private void AppendContent(StringBuilder sb, int ch, string where)
    {
        if (TomlValues.IsControl(ch))
        {
            throw _c.Error($"{TomlCursor.Describe(ch)} is not allowed in {where}; use an escape sequence");
        }

        sb.Append((char)ch);
        _c.Advance();
    }

    private void ReadEscape(StringBuilder sb)
    {
        TomlPosition start = _c.Position;
        _c.Advance();
        int ch = _c.Peek();
        switch (ch)
        {
            case 'b': sb.Append('\b'); break;
            case 't': sb.Append('\t'); break;
            case 'n': sb.Append('\n'); break;
            case 'f': sb.Append('\f'); break;
            case 'r': sb.Append('\r'); break;
            case '"': sb.Append('"'); break;
            case '\\': sb.Append('\\'); break;
            case 'u':
            case 'U':
                _c.Advance();
                ReadUnicodeEscape(sb, start, ch == 'u' ? 4 : 8, (char)ch);
                return;
            case TomlCursor.EndOfInput:
                throw _c.Error(start, "unterminated escape sequence");
            default:
                string shown = ch is >= 0x21 and < 0x7F ? $"'\\{(char)ch}'" : $"'\\' followed by {TomlCursor.Describe(ch)}";
                throw _c.Error(start, $"invalid escape sequence {shown}; valid escapes are \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX");
        }

        _c.Advance();
    }

    private void ReadUnicodeEscape(StringBuilder sb, TomlPosition start, int digits, char letter)
    {
        uint codePoint = 0;
        for (int i = 0; i < digits; i++)
        {
            int ch = _c.Peek();
            if (ch == TomlCursor.EndOfInput || !char.IsAsciiHexDigit((char)ch))
            {
                throw _c.Error(start, $"escape '\\{letter}' must be followed by exactly {digits} hexadecimal digits");
            }

            codePoint = (codePoint << 4) | (uint)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
            _c.Advance();
        }

        // Only Unicode scalar values are allowed: no surrogates, nothing above U+10FFFF.
        if (codePoint > 0x10FFFF || codePoint is >= 0xD800 and <= 0xDFFF)
        {
            string text = codePoint.ToString(digits == 4 ? "X4" : "X8", CultureInfo.InvariantCulture);
            throw _c.Error(start, $"escape '\\{letter}{text}' is not a valid Unicode scalar value");
        }

        sb.Append(char.ConvertFromUtf32((int)codePoint));
    }
}
