using System.Text.Json;

namespace Hull.Images.Registry;

/// <summary>
/// One entry of a registry's error body (distribution spec "Error Codes"):
/// <c>{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":...}]}</c>.
/// </summary>
public sealed record RegistryError(string Code, string Message, string? Detail = null)
{
    public override string ToString() => Message.Length == 0 ? Code : $"{Code}: {Message}";

    /// <summary>Parses an error body; returns an empty list when the body is not the distribution error format.</summary>
    public static IReadOnlyList<RegistryError> Parse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty) return [];
        try
        {
            var reader = new Utf8JsonReader(body);
            using JsonDocument doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("errors", out JsonElement errors)
                || errors.ValueKind != JsonValueKind.Array)
            {
                return [];
            }

            var result = new List<RegistryError>();
            foreach (JsonElement e in errors.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Object) continue;
                string code = StringProperty(e, "code") ?? "UNKNOWN";
                string message = StringProperty(e, "message") ?? "";
                string? detail = e.TryGetProperty("detail", out JsonElement d) && d.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined)
                    ? (d.ValueKind == JsonValueKind.String ? d.GetString() : d.GetRawText())
                    : null;
                result.Add(new RegistryError(code, message, detail));
            }
            return result;
        }
        catch (JsonException)
        {
            return [];
        }
    }

    private static string? StringProperty(JsonElement e, string name) =>
        e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
