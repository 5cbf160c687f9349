using System.Globalization;
using System.Text.Json;
using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

/// <summary>
/// Compares a parsed TOML tree with toml-test's tagged JSON, where every scalar is
/// {"type": "...", "value": "..."} and tables/arrays are plain JSON objects/arrays.
/// </summary>
internal static class TomlTestJson
{
    /// <summary>Returns a description of the first difference, or null when equal.</summary>
    public static string? Diff(JsonElement expected, object actual, string path = "$")
    {
        if (IsTagged(expected, out string? type, out string? value))
        {
            return DiffScalar(type, value, actual, path);
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
                if (actual is not TomlArray array)
                {
                    return $"{path}: expected an array, got {Describe(actual)}";
                }

                int count = expected.GetArrayLength();
                if (count != array.Count)
                {
                    return $"{path}: expected {count} elements, got {array.Count}";
                }

                int i = 0;
                foreach (JsonElement element in expected.EnumerateArray())
                {
                    string? diff = Diff(element, array[i], $"{path}[{i}]");
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

    private static string? DiffScalar(string? type, string? value, object actual, string path)
    {
        value ??= string.Empty;
        switch (type)
        {
            case "string":
                return actual is string s && s == value ? null : Mismatch(path, type, value, actual);
            case "integer":
                return actual is long l && l == long.Parse(value, CultureInfo.InvariantCulture) ? null : Mismatch(path, type, value, actual);
            case "float":
                return actual is double d && SameFloat(ParseFloat(value), d) ? null : Mismatch(path, type, value, actual);
            case "bool":
                return actual is bool b && (b ? "true" : "false") == value ? null : Mismatch(path, type, value, actual);
            case "datetime" or "datetime-local" or "date-local" or "time-local":
            {
                TomlDateTimeKind kind = type switch
                {
                    "datetime" => TomlDateTimeKind.OffsetDateTime,
                    "datetime-local" => TomlDateTimeKind.LocalDateTime,
                    "date-local" => TomlDateTimeKind.LocalDate,
                    _ => TomlDateTimeKind.LocalTime,
                };

                // Compared by value, so "56.6Z" equals toml-test's normalised "56.600Z".
                return actual is TomlDateTime dt && dt.Kind == kind && dt.Equals(TomlDateTime.Parse(value))
                    ? null
                    : Mismatch(path, type, value, actual);
            }

            default:
                return $"{path}: unknown toml-test type '{type}'";
        }
    }

    public static bool SameFloat(double expected, double actual) =>
        double.IsNaN(expected) ? double.IsNaN(actual) : BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual);

    private static double ParseFloat(string value) => value switch
    {
        "nan" or "+nan" or "-nan" => double.NaN,
        "inf" or "+inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        _ => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    private static string Mismatch(string path, string? type, string value, object actual) =>
        $"{path}: expected {type} '{value}', got {Describe(actual)}";

    private static string Describe(object actual) => actual switch
    {
        TomlTable => "a table",
        TomlArray a => $"an array of {a.Count}",
        double d => $"{actual.GetType().Name} '{d.ToString("R", CultureInfo.InvariantCulture)}'",
        _ => $"{actual.GetType().Name} '{actual}'",
    };
}
