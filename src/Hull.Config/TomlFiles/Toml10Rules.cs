using System.Text.RegularExpressions;
using Tomlyn.Syntax;

namespace Hull.Config.TomlFiles;

/// <summary>
/// What Tomlyn accepts and TOML 1.0 rejects. Tomlyn parses TOML 1.1; containerd reads its config with a TOML 1.0
/// parser (go-toml), and a config Hull accepts must still work after switching the node back to containerd, so Hull
/// rejects TOML 1.1 syntax too, saying how to write it in TOML 1.0:
/// <list type="bullet">
/// <item>inline tables spanning lines, and a trailing comma in an inline table;</item>
/// <item>the <c>\xHH</c> and <c>\e</c> escapes in basic strings (and quoted keys);</item>
/// <item>times without seconds (<c>07:32</c>, <c>1979-05-27T07:32Z</c>).</item>
/// </list>
/// And one Tomlyn 2.11 bug: hexadecimal and binary integers above 2^63-1 wrap around to negative values
/// (<c>0xFFFFFFFFFFFFFFFF</c> reads as -1) where TOML says they are out of range.
/// </summary>
internal sealed partial class Toml10Rules : SyntaxVisitor
{
    private const string Why = "; containerd reads TOML 1.0";

    private (SourcePosition At, string Message)? _first;

    private Toml10Rules()
    {
    }

    /// <summary>The first of these in file order, or null when the document is TOML 1.0.</summary>
    public static (SourcePosition At, string Message)? FindFirst(DocumentSyntax document)
    {
        var rules = new Toml10Rules();
        document.Accept(rules);
        return rules._first;
    }

    public override void Visit(InlineTableSyntax inline)
    {
        Report(CheckInlineTable(inline));
        base.Visit(inline);
    }

    public override void Visit(StringValueSyntax value)
    {
        if (value.Token is { TokenKind: TokenKind.String or TokenKind.StringMulti } token)
        {
            Report(CheckEscapes(token));
        }

        base.Visit(value);
    }

    public override void Visit(DateTimeValueSyntax value)
    {
        Report(CheckSeconds(value.Token!));
        base.Visit(value);
    }

    public override void Visit(IntegerValueSyntax value)
    {
        if (value is { Value: < 0, Token: { TokenKind: TokenKind.IntegerHexa or TokenKind.IntegerOctal or TokenKind.IntegerBinary } token })
        {
            Report((SourcePosition.From(token.Span.Start), $"integer `{token.Text}` is out of range (TOML integers are signed 64-bit)"));
        }

        base.Visit(value);
    }

    private void Report((SourcePosition At, string Message)? found)
    {
        if (found is { } f && (_first is not { } first || f.At.Line < first.At.Line || (f.At.Line == first.At.Line && f.At.Column < first.At.Column)))
        {
            _first = f;
        }
    }

    // TOML 1.0: "No newlines are allowed between the curly braces unless they are valid within a value."
    private static (SourcePosition At, string Message)? CheckInlineTable(InlineTableSyntax inline)
    {
        int line = inline.OpenBrace!.Span.End.Line;
        foreach (var item in inline.Items)
        {
            var keyValue = item.KeyValue!;
            foreach (SyntaxNode? part in new SyntaxNode?[] { keyValue.Key, keyValue.EqualToken, keyValue.Value, item.Comma })
            {
                if (part is null)
                {
                    continue;
                }

                if (part.Span.Start.Line != line)
                {
                    return (SourcePosition.From(inline.Span.Start),
                        $"an inline table written over several lines is TOML 1.1{Why}: write it on one line, or as a [table]");
                }

                line = part.Span.End.Line;
            }
        }

        if (inline.CloseBrace is { } close && close.Span.Start.Line != line)
        {
            return (SourcePosition.From(inline.Span.Start),
                $"an inline table written over several lines is TOML 1.1{Why}: write it on one line, or as a [table]");
        }

        return inline.Items.ChildrenCount > 0 && inline.Items.GetChild(inline.Items.ChildrenCount - 1)!.Comma is { } comma
            ? (SourcePosition.From(comma.Span.Start), $"a trailing comma in an inline table is TOML 1.1{Why}: remove it")
            : null;
    }

    private static (SourcePosition At, string Message)? CheckEscapes(SyntaxToken token)
    {
        string text = token.Text!;
        for (int i = 0; i < text.Length - 1; i++)
        {
            if (text[i] != '\\')
            {
                continue;
            }

            string? instead = text[i + 1] switch
            {
                'x' => "\\u00HH",
                'e' => "\\u001B",
                _ => null,
            };
            if (instead is not null)
            {
                return (SourcePosition.From(token.Span.Start).After(text.AsSpan(0, i)),
                    $"the escape `\\{text[i + 1]}` is TOML 1.1{Why}: write {instead} instead");
            }

            i++; // the escaped character (which may be a backslash)
        }

        return null;
    }

    private static (SourcePosition At, string Message)? CheckSeconds(SyntaxToken token) =>
        TimeWithoutSeconds().IsMatch(token.Text!)
            ? (SourcePosition.From(token.Span.Start), $"a time without seconds is TOML 1.1{Why}: write the seconds (`HH:MM:00`)")
            : null;

    // An optional date, then HH:MM not followed by :SS (the offset -07:00 of a full date-time is never reached).
    [GeneratedRegex(@"^(\d{4}-\d{2}-\d{2}[Tt ])?\d{2}:\d{2}(?!:)")]
    private static partial Regex TimeWithoutSeconds();
}
