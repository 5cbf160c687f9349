using System.Globalization;
using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

/// <summary>Structural equality of two TOML trees (table key order ignored, as TOML tables are unordered).</summary>
internal static class TomlTreeComparer
{
    /// <summary>Returns a description of the first difference, or null when equal.</summary>
    public static string? Diff(object expected, object actual, string path = "$")
    {
        switch (expected)
        {
            case TomlTable e:
            {
                if (actual is not TomlTable a)
                {
                    return $"{path}: expected a table, got {actual.GetType().Name}";
                }

                if (e.Count != a.Count)
                {
                    return $"{path}: expected {e.Count} keys [{string.Join(", ", e.Keys)}], got {a.Count} [{string.Join(", ", a.Keys)}]";
                }

                foreach (KeyValuePair<string, object> pair in e)
                {
                    if (!a.TryGetValue(pair.Key, out object? value))
                    {
                        return $"{path}: missing key '{pair.Key}'";
                    }

                    string? diff = Diff(pair.Value, value, $"{path}.{pair.Key}");
                    if (diff is not null)
                    {
                        return diff;
                    }
                }

                return null;
            }

            case TomlArray e:
            {
                if (actual is not TomlArray a)
                {
                    return $"{path}: expected an array, got {actual.GetType().Name}";
                }

                if (e.Count != a.Count)
                {
                    return $"{path}: expected {e.Count} elements, got {a.Count}";
                }

                for (int i = 0; i < e.Count; i++)
                {
                    string? diff = Diff(e[i], a[i], $"{path}[{i}]");
                    if (diff is not null)
                    {
                        return diff;
                    }
                }

                return null;
            }

            case double e:
                return actual is double d && TomlTestJson.SameFloat(e, d)
                    ? null
                    : $"{path}: expected {e.ToString("R", CultureInfo.InvariantCulture)}, got {actual}";

            case TomlDateTime e:
                // Also require the same text, so precision survives a round trip.
                return actual is TomlDateTime dt && dt.Equals(e) && dt.ToString() == e.ToString()
                    ? null
                    : $"{path}: expected {e}, got {actual}";

            default:
                return expected.Equals(actual) ? null : $"{path}: expected {expected.GetType().Name} '{expected}', got {actual.GetType().Name} '{actual}'";
        }
    }
}
