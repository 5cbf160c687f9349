using System.Text.Json;
using System.Text.Json.Serialization;
using Hull.Core;

namespace Hull.Images.Oci;

/// <summary>The parts of an OCI image configuration (image-spec config.md) a runtime uses.</summary>
public sealed record ImageConfig
{
    [JsonPropertyName("architecture")] public string Architecture { get; init; } = "";
    [JsonPropertyName("os")] public string Os { get; init; } = "";
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("config")] public ExecutionConfig Config { get; init; } = new();
    [JsonPropertyName("rootfs")] public RootFs RootFs { get; init; } = new();

    /// <summary>The largest config Hull reads (it is read whole), the same bound as for a manifest.</summary>
    public const int MaxSize = 4 * 1024 * 1024;

    public static ImageConfig Parse(ReadOnlySpan<byte> json, string image)
    {
        ImageConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<ImageConfig>(json);
        }
        catch (JsonException e)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"image \"{image}\" has a malformed config: {e.Message}", e);
        }
        if (config is null || config.RootFs.DiffIds.Count == 0 && config.RootFs.Type != "layers")
            throw new HullException(ErrorKind.InvalidArgument, $"image \"{image}\" has a config without rootfs layers");
        return config;
    }
}

public sealed record ExecutionConfig
{
    [JsonPropertyName("User")] public string? User { get; init; }
    [JsonPropertyName("ExposedPorts")] public Dictionary<string, JsonElement>? ExposedPorts { get; init; }
    [JsonPropertyName("Env")] public List<string>? Env { get; init; }
    [JsonPropertyName("Entrypoint")] public List<string>? Entrypoint { get; init; }
    [JsonPropertyName("Cmd")] public List<string>? Cmd { get; init; }
    [JsonPropertyName("Volumes")] public Dictionary<string, JsonElement>? Volumes { get; init; }
    [JsonPropertyName("WorkingDir")] public string? WorkingDir { get; init; }
    [JsonPropertyName("Labels")] public Dictionary<string, string>? Labels { get; init; }
    [JsonPropertyName("StopSignal")] public string? StopSignal { get; init; }
}

public sealed record RootFs
{
    [JsonPropertyName("type")] public string Type { get; init; } = "";
    [JsonPropertyName("diff_ids")] public List<string> DiffIds { get; init; } = [];
}
