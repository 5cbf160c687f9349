using System.Globalization;
using Tomlyn;
using Tomlyn.Model;

namespace Hull.Config.Tests.Toml;

/// <summary>Structural equality of two TOML trees (Tomlyn's model; table key order ignored, as TOML tables are unordered).</summary>
internal static class TomlTreeComparer
{
    /// <summary>Returns a description of the first difference, or null when equal.</summary>
    public static string? Diff(object? expected, object? actual, string path = "$")
    {
        switch (expected)
        {
            case TomlTable e:
            {
                if (actual is not TomlTable a)
                {
                    return $"{path}: expected a table, got {actual?.GetType().Name}";
                }

                if (e.Count != a.Count)
                {
                    return $"{path}: expected {e.Count} keys [{string.Join(", ", e.Keys)}], got {a.Count} [{string.Join(", ", a.Keys)}]";
                }

                foreach (var (key, value) in e)
                {
                    if (!a.TryGetValue(key, out object? other))
                    {
                        return $"{path}: missing key '{key}'";
                    }

                    string? diff = Diff(value, other, $"{path}.{key}");
                    if (diff is not null)
                    {
                        return diff;
                    }
                }

                return null;
            }

            case TomlArray e:
                return actual is TomlArray array ? DiffLists(e.ToList(), array.ToList(), path) : $"{path}: expected an array, got {actual?.GetType().Name}";

            case TomlTableArray e:
                return actual is TomlTableArray tables
                    ? DiffLists(e.ToList<object?>(), tables.ToList<object?>(), path)
                    : $"{path}: expected an array of tables, got {actual?.GetType().Name}";

            case double e:
                return actual is double d && TomlTestJson.SameFloat(e, d)
                    ? null
                    : $"{path}: expected {e.ToString("R", CultureInfo.InvariantCulture)}, got {actual}";

            case TomlDateTime e:
                // Same kind and same text, so precision survives a round trip. (Equals would also compare the date
                // Tomlyn puts under a local time, which is the day it was read.)
                return actual is TomlDateTime dt && dt.Kind == e.Kind && dt.ToString() == e.ToString()
                    ? null
                    : $"{path}: expected {e}, got {actual}";

            default:
                return Equals(expected, actual) ? null : $"{path}: expected {expected?.GetType().Name} '{expected}', got {actual?.GetType().Name} '{actual}'";
        }
    }

    private static string? DiffLists(List<object?> expected, List<object?> actual, string path)
    {
        if (expected.Count != actual.Count)
        {
            return $"{path}: expected {expected.Count} elements, got {actual.Count}";
        }

        for (int i = 0; i < expected.Count; i++)
        {
            string? diff = Diff(expected[i], actual[i], $"{path}[{i}]");
            if (diff is not null)
            {
                return diff;
            }
        }

        return null;
    }
}
