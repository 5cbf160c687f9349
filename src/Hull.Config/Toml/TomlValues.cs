using System.Text;

namespace Hull.Config.Toml;

/// <summary>Shared helpers for the value model: type checks, type names and key/string quoting.</summary>
internal static class TomlValues
{
    /// <summary>Accepts the TOML value types, widening common CLR numeric/date types so callers need not cast.</summary>
    public static object Normalize(object? value) => value switch
    {
        null => throw new ArgumentNullException(nameof(value), "TOML has no null value."),
        string or long or double or bool or TomlDateTime or TomlArray or TomlTable => value,
        int i => (long)i,
        uint u => (long)u,
        short s => (long)s,
        ushort us => (long)us,
        byte b => (long)b,
        sbyte sb => (long)sb,
        float f => (double)f,
        DateTimeOffset dto => TomlDateTime.FromDateTimeOffset(dto),
        DateOnly d => TomlDateTime.FromLocalDate(d),
        TimeOnly t => TomlDateTime.FromLocalTime(t),
        _ => throw new ArgumentException($"Values of type {value.GetType()} cannot be stored in a TOML document.", nameof(value)),
    };

    /// <summary>Human-readable TOML type name for error messages.</summary>
    public static string TypeName(object value) => value switch
    {
        string => "string",
        long => "integer",
        double => "float",
        bool => "boolean",
        TomlDateTime dt => dt.Kind switch
        {
            TomlDateTimeKind.OffsetDateTime => "offset date-time",
            TomlDateTimeKind.LocalDateTime => "local date-time",
            TomlDateTimeKind.LocalDate => "local date",
            _ => "local time",
        },
        TomlArray { IsArrayOfTables: true } => "array of tables",
        TomlArray => "array",
        TomlTable { Kind: TomlTableKind.Inline } => "inline table",
        TomlTable => "table",
        _ => value.GetType().Name,
    };

    public static bool IsBareKeyChar(int c) =>
        c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-';

    public static bool IsBareKey(string key)
    {
        if (key.Length == 0)
        {
            return false;
        }

        foreach (char c in key)
        {
            if (!IsBareKeyChar(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Quotes a key only when it is not bare. Literal quotes are preferred (as containerd's own
    /// <c>config dump</c> does, e.g. <c>plugins.'io.containerd.cri.v1.runtime'</c>); basic quotes are
    /// used when the key contains characters a literal string cannot hold.
    /// </summary>
    public static string QuoteKey(string key)
    {
        if (IsBareKey(key))
        {
            return key;
        }

        return key.Length > 0 && CanBeLiteral(key) ? "'" + key + "'" : QuoteBasic(key);
    }

    public static string FormatKeyPath(IEnumerable<string> segments) => string.Join('.', segments.Select(QuoteKey));

    public static string QuoteBasic(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\t': sb.Append("\\t"); break;
                case '\n': sb.Append("\\n"); break;
                case '\f': sb.Append("\\f"); break;
                case '\r': sb.Append("\\r"); break;
                default:
                    if (IsControl(c))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>Characters TOML forbids unescaped in strings and comments (tab is the one exception).</summary>
    public static bool IsControl(int c) => c is (< 0x20 and not '\t') or 0x7F;

    private static bool CanBeLiteral(string key)
    {
        foreach (char c in key)
        {
            if (c == '\'' || IsControl(c))
            {
                return false;
            }
        }

        return true;
    }
}
