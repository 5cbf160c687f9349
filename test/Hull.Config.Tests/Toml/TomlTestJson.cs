using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tomlyn;
using Tomlyn.Model;

namespace Hull.Config.Tests.Toml;

/// <summary>
/// Compares a parsed TOML tree (Tomlyn's model) with toml-test's tagged JSON, where every scalar is
/// {"type": "...", "value": "..."} and tables/arrays are plain JSON objects/arrays.
/// </summary>
internal static partial class TomlTestJson
{
    /// <summary>Returns a description of the first difference, or null when equal.</summary>
    public static string? Diff(JsonElement expected, object? actual, string path = "$")
    {
        if (IsTagged(expected, out string? type, out string? value))
        {
            return DiffScalar(type, value ?? "", actual, path);
        }

        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
            {
                if (actual is not TomlTable table)
                {
                    return $"{path}: expected a table, got {Describe(actual)}";
                }

                var expectedKeys = expected.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
                string? extra = table.Keys.FirstOrDefault(k => !expectedKeys.Contains(k));
                if (extra is not null)
                {
                    return $"{path}: unexpected key '{extra}'";
                }

                foreach (JsonProperty property in expected.EnumerateObject())
                {
                    if (!table.TryGetValue(property.Name, out object? child))
                    {
                        return $"{path}: missing key '{property.Name}'";
                    }

                    string? diff = Diff(property.Value, child, $"{path}.{property.Name}");
                    if (diff is not null)
                    {
                        return diff;
                    }
                }

                return null;
            }

            case JsonValueKind.Array:
            {
                // [[tables]] are a TomlTableArray, inline arrays a TomlArray; JSON has one array.
                IReadOnlyList<object?>? items = actual switch
                {
                    TomlArray array => array.ToList(),
                    TomlTableArray tables => tables.ToList(),
                    _ => null,
                };
                if (items is null)
                {
                    return $"{path}: expected an array, got {Describe(actual)}";
                }

                int count = expected.GetArrayLength();
                if (count != items.Count)
                {
                    return $"{path}: expected {count} elements, got {items.Count}";
                }

                int i = 0;
                foreach (JsonElement element in expected.EnumerateArray())
                {
                    string? diff = Diff(element, items[i], $"{path}[{i}]");
                    if (diff is not null)
                    {
                        return diff;
                    }

                    i++;
                }

                return null;
            }

            default:
                return $"{path}: unexpected JSON {expected.ValueKind} in expected output";
        }
    }

    // A tagged scalar has exactly "type" and "value", both strings (a TOML table with such keys would have objects there).
    private static bool IsTagged(JsonElement e, out string? type, out string? value)
    {
        type = value = null;
        if (e.ValueKind != JsonValueKind.Object || e.EnumerateObject().Count() != 2 ||
            !e.TryGetProperty("type", out JsonElement t) || !e.TryGetProperty("value", out JsonElement v) ||
            t.ValueKind != JsonValueKind.String || v.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        type = t.GetString();
        value = v.GetString();
        return true;
    }

    private static string? DiffScalar(string? type, string value, object? actual, string path)
    {
        bool same = type switch
        {
            "string" => actual is string s && s == value,
            "integer" => actual is long l && l == long.Parse(value, CultureInfo.InvariantCulture),
            "float" => actual is double d && SameFloat(ParseFloat(value), d),
            "bool" => actual is bool b && (b ? "true" : "false") == value,
            "datetime" or "datetime-local" or "date-local" or "time-local" => actual is TomlDateTime dt && SameDateTime(type, value, dt),
            _ => throw new InvalidOperationException($"{path}: unknown toml-test type '{type}'"),
        };
        return same ? null : $"{path}: expected {type} '{value}', got {Describe(actual)}";
    }

    // Tomlyn keeps date-times as DateTimeOffset, i.e. 100 ns ticks: digits beyond the seventh are truncated, as TOML allows.
    private static bool SameDateTime(string type, string value, TomlDateTime actual)
    {
        string text = BeyondTicks().Replace(value, "$1");
        var clock = actual.DateTime;
        return type switch
        {
            "datetime" => actual.Kind is TomlDateTimeKind.OffsetDateTimeByZ or TomlDateTimeKind.OffsetDateTimeByNumber &&
                          DateTimeOffset.Parse(text, CultureInfo.InvariantCulture) is var expected &&
                          expected == clock && expected.Offset == clock.Offset,
            "datetime-local" => actual.Kind == TomlDateTimeKind.LocalDateTime &&
                                DateTime.Parse(text, CultureInfo.InvariantCulture) == clock.DateTime,
            "date-local" => actual.Kind == TomlDateTimeKind.LocalDate &&
                            DateOnly.Parse(text, CultureInfo.InvariantCulture) == DateOnly.FromDateTime(clock.DateTime),
            _ => actual.Kind == TomlDateTimeKind.LocalTime &&
                 TimeOnly.Parse(text, CultureInfo.InvariantCulture) == TimeOnly.FromTimeSpan(clock.TimeOfDay),
        };
    }

    [GeneratedRegex(@"(\.\d{7})\d+")]
    private static partial Regex BeyondTicks();

    public static bool SameFloat(double expected, double actual) =>
        double.IsNaN(expected) ? double.IsNaN(actual) : BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual);

    private static double ParseFloat(string value) => value switch
    {
        "nan" or "+nan" or "-nan" => double.NaN,
        "inf" or "+inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        _ => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    private static string Describe(object? actual) => actual switch
    {
        null => "nothing",
        TomlTable => "a table",
        TomlArray a => $"an array of {a.Count}",
        TomlTableArray a => $"an array of {a.Count} tables",
        double d => $"{actual.GetType().Name} '{d.ToString("R", CultureInfo.InvariantCulture)}'",
        _ => $"{actual.GetType().Name} '{actual}'",
    };
}
