using System.Buffers;
using System.Text.Unicode;

namespace Hull.Config.Toml;

/// <summary>Entry points for reading TOML 1.0.0 documents.</summary>
public static class TomlParser
{
    private const char ByteOrderMark = '\uFEFF';

    /// <summary>Parses TOML text. A leading byte-order mark is ignored.</summary>
    /// <param name="text">The document.</param>
    /// <param name="sourceName">Label used in error messages (typically the file path).</param>
    /// <exception cref="TomlException">The text is not valid TOML 1.0.0.</exception>
    public static TomlDocument Parse(string text, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        int start = text.Length > 0 && text[0] == ByteOrderMark ? 1 : 0;
        RejectLoneSurrogates(text, start, sourceName);
        return new TomlDocument(new TomlReader(text, start, sourceName).ReadDocument(), sourceName);
    }

    /// <summary>
    /// Parses raw bytes. TOML must be valid UTF-8; anything else (including UTF-16) is rejected with
    /// the position of the first bad byte. A leading UTF-8 byte-order mark is ignored.
    /// </summary>
    /// <exception cref="TomlException">The bytes are not valid UTF-8 or not valid TOML 1.0.0.</exception>
    public static TomlDocument ParseUtf8(ReadOnlySpan<byte> utf8, string? sourceName = null)
    {
        char[] buffer = new char[utf8.Length];
        OperationStatus status = Utf8.ToUtf16(utf8, buffer, out int bytesRead, out int charsWritten, replaceInvalidSequences: false);
        if (status != OperationStatus.Done)
        {
            throw new TomlException("invalid UTF-8 byte sequence (TOML files must be UTF-8 encoded)", sourceName, PositionOf(buffer.AsSpan(0, charsWritten)));
        }

        // A BOM decodes to U+FEFF, which Parse skips once at the start (a second one is an error).
        return Parse(new string(buffer, 0, charsWritten), sourceName);
    }

    /// <summary>Reads and parses a file; the path is used as the source name in error messages.</summary>
    /// <exception cref="TomlException">The file is not valid TOML 1.0.0.</exception>
    public static TomlDocument ParseFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return ParseUtf8(File.ReadAllBytes(path), path);
    }

    // .NET strings can hold unpaired surrogates, which are not Unicode scalar values and so not TOML.
    private static void RejectLoneSurrogates(string text, int start, string? sourceName)
    {
        for (int i = start; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c))
            {
                continue;
            }

            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }

            throw new TomlException("unpaired UTF-16 surrogate (the text is not valid Unicode)", sourceName, PositionOf(text.AsSpan(start, i - start)));
        }
    }

    /// <summary>The position just after <paramref name="prefix"/>, the valid text before an encoding error.</summary>
    private static TomlPosition PositionOf(ReadOnlySpan<char> prefix)
    {
        int lastNewline = prefix.LastIndexOf('\n');
        int line = prefix.Count('\n') + 1;
        ReadOnlySpan<char> lastLine = prefix[(lastNewline + 1)..];
        int column = 1;
        foreach (char c in lastLine)
        {
            if (!char.IsLowSurrogate(c))
            {
                column++;
            }
        }

        return new TomlPosition(line, column);
    }
}
