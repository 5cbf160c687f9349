using System.Buffers;
using System.Text.Unicode;
using Hull.Config.TomlFiles;
using Tomlyn;
using Tomlyn.Model;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Hull.Config;

/// <summary>
/// A parsed config file: Tomlyn's value tree (string, long, double, bool, <see cref="TomlDateTime"/>,
/// <see cref="TomlArray"/>, <see cref="TomlTable"/>, <see cref="TomlTableArray"/>) and where each key was written,
/// so diagnostics can point at the line an operator wrote.
/// </summary>
public sealed class ConfigDocument
{
    private ConfigDocument(TomlTable root, KeyPositions positions, string? sourceName)
    {
        Root = root;
        Positions = positions;
        SourceName = sourceName;
    }

    public TomlTable Root { get; }

    /// <summary>File name or other label used in messages; null for anonymous text.</summary>
    public string? SourceName { get; }

    internal KeyPositions Positions { get; }

    /// <summary>
    /// Parses TOML 1.0 text with Tomlyn's syntax parser. A leading byte-order mark is ignored. TOML 1.1 syntax is
    /// rejected (see <see cref="Toml10Rules"/>).
    /// </summary>
    /// <exception cref="ConfigException">The text is not valid TOML 1.0; the message is <c>source:line:column: what is wrong</c>.</exception>
    public static ConfigDocument Parse(string text, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        DocumentSyntax syntax;
        try
        {
            syntax = SyntaxParser.Parse(text, sourceName, validate: true);
        }
        catch (TomlException e)
        {
            // Tomlyn's syntax parser throws (rather than reports) only when values nest deeper than its MaxDepth.
            throw new ConfigException(Message(sourceName, SourcePosition.None, "arrays and inline tables are nested too deeply"), e);
        }
        catch (ArgumentOutOfRangeException e)
        {
            // Tomlyn 2.11's lexer throws this, instead of reporting an error, when the text ends inside a \u escape.
            throw new ConfigException(Message(sourceName, SourcePosition.None, $"not valid TOML ({e.Message})"), e);
        }

        if (syntax.Diagnostics.FirstOrDefault(d => d.Kind == DiagnosticMessageKind.Error) is { } error)
        {
            throw new ConfigException(Message(sourceName, SourcePosition.From(error.Span.Start), error.Message), new TomlException(syntax.Diagnostics));
        }

        if (Toml10Rules.FindFirst(syntax) is { } newer)
        {
            throw new ConfigException(Message(sourceName, newer.At, newer.Message));
        }

        var (root, positions) = TomlTreeBuilder.Build(syntax);
        return new ConfigDocument(root, positions, sourceName);
    }

    /// <summary>Parses raw bytes, which must be UTF-8 (TOML files are); a leading UTF-8 byte-order mark is ignored.</summary>
    /// <exception cref="ConfigException">The bytes are not UTF-8 (the message points at the first bad byte) or not valid TOML 1.0.</exception>
    public static ConfigDocument ParseUtf8(ReadOnlySpan<byte> utf8, string? sourceName = null)
    {
        char[] buffer = new char[utf8.Length];
        if (Utf8.ToUtf16(utf8, buffer, out _, out int written, replaceInvalidSequences: false) != OperationStatus.Done)
        {
            throw new ConfigException(Message(sourceName, new SourcePosition(1, 1).After(buffer.AsSpan(0, written)),
                "invalid UTF-8 byte sequence (TOML files must be UTF-8 encoded)"));
        }

        return Parse(new string(buffer, 0, written), sourceName);
    }

    private static string Message(string? sourceName, SourcePosition at, string reason)
    {
        string source = sourceName ?? "<toml>";
        return at.IsKnown ? $"{source}:{at.Line}:{at.Column}: {reason}" : $"{source}: {reason}";
    }
}
