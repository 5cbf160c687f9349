using System.Text.Json;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Reference;

namespace Hull.Images.Registry;

/// <summary>A parsed manifest: an <see cref="ImageIndex"/> (OCI index, Docker manifest list) or an <see cref="ImageManifest"/>.</summary>
public abstract record ManifestDocument(string MediaType)
{
    public static bool IsIndexType(string mediaType) => mediaType is MediaTypes.OciIndex or MediaTypes.DockerManifestList;

    public static bool IsImageManifestType(string mediaType) => mediaType is MediaTypes.OciManifest or MediaTypes.DockerManifest;

    public static bool IsSchema1Type(string mediaType) => mediaType is MediaTypes.DockerSchema1 or MediaTypes.DockerSchema1Signed;

    /// <summary>
    /// Works out the media type from the body's <c>mediaType</c>, then the response's Content-Type, then the
    /// shape of the document (OCI allows <c>mediaType</c> to be absent and registries send odd content types).
    /// </summary>
    /// <exception cref="Schema1ImageException">The manifest is Docker schema 1.</exception>
    /// <exception cref="HullException">FailedPrecondition when the body is not a manifest Hull understands.</exception>
    public static string DetectMediaType(ReadOnlySpan<byte> content, string? contentType, string image)
    {
        string? declared = null;
        int? schemaVersion = null;
        bool hasManifests = false, hasLayers = false, hasConfig = false, hasFsLayers = false;
        try
        {
            var reader = new Utf8JsonReader(content);
            using JsonDocument doc = JsonDocument.ParseValue(ref reader);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Invalid(image, "not a JSON object");
            if (root.TryGetProperty("mediaType", out JsonElement mt) && mt.ValueKind == JsonValueKind.String) declared = mt.GetString();
            if (root.TryGetProperty("schemaVersion", out JsonElement sv) && sv.ValueKind == JsonValueKind.Number && sv.TryGetInt32(out int v)) schemaVersion = v;
            hasManifests = root.TryGetProperty("manifests", out _);
            hasLayers = root.TryGetProperty("layers", out _);
            hasConfig = root.TryGetProperty("config", out _);
            hasFsLayers = root.TryGetProperty("fsLayers", out _);
        }
        catch (JsonException e)
        {
            throw Invalid(image, "not valid JSON: " + e.Message);
        }

        string? type = ContentTypeWithoutParameters(contentType);
        if (schemaVersion == 1 || hasFsLayers || (declared is not null && IsSchema1Type(declared)) || (type is not null && IsSchema1Type(type)))
            throw new Schema1ImageException(image);

        if (!string.IsNullOrEmpty(declared)) return declared;
        if (type is not null && (IsIndexType(type) || IsImageManifestType(type))) return type;
        if (hasManifests) return MediaTypes.OciIndex;
        if (hasConfig || hasLayers) return MediaTypes.OciManifest;
        throw Invalid(image, $"unrecognised manifest (content type \"{contentType}\")");
    }

    /// <summary>Parses an index or image manifest of the given media type.</summary>
    public static ManifestDocument Parse(ReadOnlySpan<byte> content, string mediaType, string image)
    {
        if (IsSchema1Type(mediaType)) throw new Schema1ImageException(image);
        try
        {
            var reader = new Utf8JsonReader(content);
            using JsonDocument doc = JsonDocument.ParseValue(ref reader);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Invalid(image, "not a JSON object");
            if (root.TryGetProperty("schemaVersion", out JsonElement sv) && sv.ValueKind == JsonValueKind.Number && sv.GetInt32() == 1)
                throw new Schema1ImageException(image);

            if (IsIndexType(mediaType))
            {
                if (!root.TryGetProperty("manifests", out JsonElement manifests) || manifests.ValueKind != JsonValueKind.Array)
                    throw Invalid(image, "index has no \"manifests\" list");
                return new ImageIndex(mediaType, manifests.EnumerateArray().Select(e => ReadDescriptor(e, image)).ToArray())
                {
                    Annotations = ReadStringMap(root, "annotations"),
                };
            }

            if (IsImageManifestType(mediaType))
            {
                if (!root.TryGetProperty("config", out JsonElement config)) throw Invalid(image, "manifest has no \"config\"");
                JsonElement layers = root.TryGetProperty("layers", out JsonElement l) && l.ValueKind == JsonValueKind.Array ? l : default;
                Descriptor[] layerDescriptors = layers.ValueKind == JsonValueKind.Array
                    ? layers.EnumerateArray().Select(e => ReadDescriptor(e, image)).ToArray()
                    : [];
                return new ImageManifest(mediaType, ReadDescriptor(config, image), layerDescriptors)
                {
                    Annotations = ReadStringMap(root, "annotations"),
                };
            }
        }
        catch (JsonException e)
        {
            throw Invalid(image, "not valid JSON: " + e.Message);
        }
        catch (InvalidOperationException e)
        {
            throw Invalid(image, e.Message);
        }
        catch (FormatException e)
        {
            throw Invalid(image, e.Message);
        }

        throw Invalid(image, $"unsupported manifest media type \"{mediaType}\"");
    }

    private static Descriptor ReadDescriptor(JsonElement e, string image)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Invalid(image, "descriptor is not an object");
        string mediaType = e.TryGetProperty("mediaType", out JsonElement mt) ? mt.GetString() ?? "" : "";
        string digest = e.TryGetProperty("digest", out JsonElement d) ? d.GetString() ?? "" : "";
        long size = e.TryGetProperty("size", out JsonElement s) ? s.GetInt64() : -1;
        if (!Digests.IsValid(digest)) throw Invalid(image, $"descriptor has an invalid digest \"{digest}\"");
        if (size < 0) throw Invalid(image, $"descriptor {digest} has no valid size");

        Platform? platform = null;
        if (e.TryGetProperty("platform", out JsonElement p) && p.ValueKind == JsonValueKind.Object)
        {
            platform = new Platform(
                p.TryGetProperty("os", out JsonElement os) ? os.GetString() ?? "" : "",
                p.TryGetProperty("architecture", out JsonElement arch) ? arch.GetString() ?? "" : "",
                p.TryGetProperty("variant", out JsonElement variant) ? variant.GetString() : null)
            {
                OsVersion = p.TryGetProperty("os.version", out JsonElement osv) ? osv.GetString() : null,
                OsFeatures = p.TryGetProperty("os.features", out JsonElement osf) && osf.ValueKind == JsonValueKind.Array
                    ? osf.EnumerateArray().Select(f => f.GetString() ?? "").ToArray()
                    : null,
            };
        }

        return new Descriptor(mediaType, digest, size)
        {
            Platform = platform,
            Annotations = ReadStringMap(e, "annotations"),
            Urls = e.TryGetProperty("urls", out JsonElement urls) && urls.ValueKind == JsonValueKind.Array
                ? urls.EnumerateArray().Select(u => u.GetString() ?? "").ToArray()
                : null,
        };
    }

    private static IReadOnlyDictionary<string, string>? ReadStringMap(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out JsonElement map) || map.ValueKind != JsonValueKind.Object) return null;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty p in map.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.String) result[p.Name] = p.Value.GetString()!;
        }
        return result;
    }

    private static string? ContentTypeWithoutParameters(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return null;
        int semicolon = contentType.IndexOf(';');
        return (semicolon >= 0 ? contentType[..semicolon] : contentType).Trim();
    }

    private static HullException Invalid(string image, string reason) =>
        new(ErrorKind.FailedPrecondition, $"image \"{image}\" has an invalid manifest: {reason}");
}

/// <summary>An OCI image index or Docker manifest list.</summary>
public sealed record ImageIndex(string MediaType, IReadOnlyList<Descriptor> Manifests) : ManifestDocument(MediaType)
{
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>An OCI image manifest or Docker schema 2 manifest.</summary>
public sealed record ImageManifest(string MediaType, Descriptor Config, IReadOnlyList<Descriptor> Layers) : ManifestDocument(MediaType)
{
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}
