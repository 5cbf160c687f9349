using System.Text.Json;

namespace Hull.Images.Content;

/// <summary>Labels are stored as a JSON object of strings (sorted, so equal sets compare equal in SQL).</summary>
internal static class LabelsJson
{
    private static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>();

    public static string Serialize(IReadOnlyDictionary<string, string>? labels) =>
        labels is null || labels.Count == 0 ? "{}" : JsonSerializer.Serialize(new SortedDictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal));

    public static IReadOnlyDictionary<string, string> Deserialize(string json) =>
        json == "{}" ? Empty : JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? Empty;
}
