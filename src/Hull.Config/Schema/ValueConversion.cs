using Hull.Config.TomlFiles;
using Tomlyn;
using Tomlyn.Model;

namespace Hull.Config.Schema;

/// <summary>Between Tomlyn's TOML values (string, long, bool, TomlArray, TomlTable, TomlTableArray…) and model values (string, int, bool, TimeSpan, lists, maps).</summary>
internal static class ValueConversion
{
    /// <summary>Converts a TOML value to the model value of <paramref name="type"/>; false with the reason when it has the wrong type.</summary>
    public static bool TryFromToml(object value, ConfigValueType type, out object result, out string? error)
    {
        result = value;
        error = null;
        switch (type)
        {
            case ConfigValueType.String when value is string:
            case ConfigValueType.Boolean when value is bool:
            case ConfigValueType.Any:
            case ConfigValueType.Table when value is TomlTable:
            case ConfigValueType.TableArray when TomlModel.AsTables(value) is not null:
                return true;
            case ConfigValueType.Integer when value is long l:
                if (l is < int.MinValue or > int.MaxValue)
                {
                    error = $"{l} is out of range";
                    return false;
                }

                result = (int)l;
                return true;
            case ConfigValueType.Duration when value is string s:
                if (!GoDuration.TryParse(s, out var duration, out var reason))
                {
                    error = $"\"{s}\" is not a duration ({reason}); write e.g. \"30s\", \"5m\" or \"4h0m0s\"";
                    return false;
                }

                if (duration < TimeSpan.Zero)
                {
                    error = $"\"{s}\" is negative";
                    return false;
                }

                result = duration;
                return true;
            case ConfigValueType.StringList when value is TomlArray list:
                var strings = new List<string>(list.Count);
                // Tomlyn's arrays are lists of object?; parsed ones never hold null.
                foreach (object item in list.OfType<object>())
                {
                    if (item is not string text)
                    {
                        error = $"the list holds {Describe(item)}, expected strings only";
                        return false;
                    }

                    strings.Add(text);
                }

                result = strings;
                return true;
            case ConfigValueType.StringMap when value is TomlTable table:
                var map = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (key, item) in table)
                {
                    if (item is not string text)
                    {
                        error = $"`{key}` is {Describe(item)}, expected strings only";
                        return false;
                    }

                    map[key] = text;
                }

                result = map;
                return true;
            default:
                error = $"got {Describe(value)}";
                return false;
        }
    }

    /// <summary>A model value as a TOML value, for writing.</summary>
    public static object ToToml(object value) => value switch
    {
        string or bool or long => value,
        int i => (long)i,
        TimeSpan t => GoDuration.Format(t),
        IReadOnlyDictionary<string, string> map => ToTable(map),
        IEnumerable<string> list => TomlModel.StringArray(list),
        _ => throw new ArgumentException($"no TOML form for {value.GetType()}", nameof(value)),
    };

    /// <summary>Whether a TOML value counts as "set": a non-empty string or collection, true, or a non-zero number.</summary>
    public static bool IsSet(object value) => value switch
    {
        string s => s.Length > 0,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        TomlArray a => a.Count > 0,
        TomlTableArray a => a.Count > 0,
        TomlTable t => t.Values.Any(IsSet),
        _ => true,
    };

    /// <summary>Whether a converted TOML value equals an <see cref="IgnoredNode.Default"/>.</summary>
    public static bool EqualsDefault(object value, object defaultValue) => defaultValue switch
    {
        _ when ReferenceEquals(defaultValue, IgnoredNode.Empty) => value switch
        {
            TomlTable t => t.Count == 0,
            TomlArray a => a.Count == 0,
            TomlTableArray a => a.Count == 0,
            _ => false,
        },
        IEnumerable<string> expected when value is IEnumerable<string> actual => expected.SequenceEqual(actual),
        _ => Equals(value, defaultValue),
    };

    public static string TypeName(ConfigValueType type) => type switch
    {
        ConfigValueType.String => "a string",
        ConfigValueType.Integer => "an integer",
        ConfigValueType.Boolean => "a boolean (true or false)",
        ConfigValueType.Duration => "a duration string such as \"30s\", \"5m\" or \"4h0m0s\"",
        ConfigValueType.StringList => "a list of strings",
        ConfigValueType.StringMap => "a table of strings",
        ConfigValueType.Table => "a table",
        ConfigValueType.TableArray => "an array of tables",
        _ => "a value",
    };

    /// <summary>A TOML value's type for messages.</summary>
    public static string Describe(object value) => value switch
    {
        string s => $"a string (\"{(s.Length > 40 ? s[..40] + "…" : s)}\")",
        long l => $"an integer ({l})",
        double d => $"a float ({d.ToString(System.Globalization.CultureInfo.InvariantCulture)})",
        bool b => $"a boolean ({(b ? "true" : "false")})",
        TomlArray => "an array",
        TomlTableArray => "an array of tables",
        TomlTable => "a table",
        TomlDateTime => "a date-time",
        _ => value.GetType().Name,
    };

    private static TomlTable ToTable(IReadOnlyDictionary<string, string> map)
    {
        var table = new TomlTable();
        foreach (var (key, value) in map)
        {
            table.Add(key, value);
        }

        return table;
    }
}
