using System.Globalization;
using System.Text;

namespace Hull.Config.Toml;

/// <summary>
/// Serialises a <see cref="TomlTable"/> to TOML 1.0.0 text that parses back to an equal tree.
/// Tables become <c>[a.b]</c> sections (keys quoted when not bare), arrays of tables become
/// <c>[[a.b]]</c> sections, and inline tables, arrays and scalars are written inline.
/// </summary>
public static class TomlWriter
{
    public static string Write(TomlDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        return Write(document.Root);
    }

    public static string Write(TomlTable table)
    {
        var sb = new StringBuilder();
        using (var writer = new StringWriter(sb, CultureInfo.InvariantCulture))
        {
            Write(table, writer);
        }

        return sb.ToString();
    }

    public static void Write(TomlTable table, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(writer);
        new SectionWriter(writer).WriteSection(table, [], isArrayElement: false);
    }

    /// <summary>Formats a single value in inline syntax (strings quoted, tables as <c>{ ... }</c>).</summary>
    public static string FormatValue(object value)
    {
        var sb = new StringBuilder();
        AppendInline(sb, TomlValues.Normalize(value));
        return sb.ToString();
    }

    private static void AppendInline(StringBuilder sb, object value)
    {
        switch (value)
        {
            case string s:
                sb.Append(TomlValues.QuoteBasic(s));
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(FormatFloat(d));
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case TomlDateTime dt:
                sb.Append(dt.ToString());
                break;
            case TomlArray array:
                sb.Append('[');
                for (int i = 0; i < array.Count; i++)
                {
                    sb.Append(i == 0 ? string.Empty : ", ");
                    AppendInline(sb, array[i]);
                }

                sb.Append(']');
                break;
            case TomlTable table:
                if (table.Count == 0)
                {
                    sb.Append("{}");
                    break;
                }

                sb.Append("{ ");
                bool first = true;
                foreach (KeyValuePair<string, object> pair in table)
                {
                    sb.Append(first ? string.Empty : ", ").Append(TomlValues.QuoteKey(pair.Key)).Append(" = ");
                    AppendInline(sb, pair.Value);
                    first = false;
                }

                sb.Append(" }");
                break;
            default:
                throw new ArgumentException($"Values of type {value.GetType()} cannot be written as TOML.", nameof(value));
        }
    }

    private static string FormatFloat(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        // Shortest round-trippable form; TOML needs a '.' or an exponent to read it back as a float.
        string s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') ? s : s + ".0";
    }

    private sealed class SectionWriter(TextWriter writer)
    {
        private bool _wroteAnything;

        public void WriteSection(TomlTable table, List<string> path, bool isArrayElement)
        {
            var simple = new List<KeyValuePair<string, object>>();
            var sections = new List<KeyValuePair<string, object>>();
            foreach (KeyValuePair<string, object> pair in table)
            {
                (IsSection(pair.Value) ? sections : simple).Add(pair);
            }

            // A table holding only sub-tables needs no header: [a.b] creates [a] implicitly.
            bool needsHeader = isArrayElement || (path.Count > 0 && (simple.Count > 0 || sections.Count == 0));
            if (needsHeader)
            {
                if (_wroteAnything)
                {
                    writer.Write('\n');
                }

                string name = TomlValues.FormatKeyPath(path);
                writer.Write(isArrayElement ? $"[[{name}]]\n" : $"[{name}]\n");
                _wroteAnything = true;
            }

            foreach (KeyValuePair<string, object> pair in simple)
            {
                writer.Write(TomlValues.QuoteKey(pair.Key));
                writer.Write(" = ");
                writer.Write(FormatValue(pair.Value));
                writer.Write('\n');
                _wroteAnything = true;
            }

            foreach (KeyValuePair<string, object> pair in sections)
            {
                path.Add(pair.Key);
                if (pair.Value is TomlTable child)
                {
                    WriteSection(child, path, isArrayElement: false);
                }
                else
                {
                    foreach (object element in (TomlArray)pair.Value)
                    {
                        WriteSection((TomlTable)element, path, isArrayElement: true);
                    }
                }

                path.RemoveAt(path.Count - 1);
            }
        }

        // Inline tables stay inline; an empty array of tables has no [[x]] form, so it is written as [].
        private static bool IsSection(object value) => value switch
        {
            TomlTable table => table.Kind != TomlTableKind.Inline,
            TomlArray { IsArrayOfTables: true, Count: > 0 } array => array.All(e => e is TomlTable),
            _ => false,
        };
    }
}
