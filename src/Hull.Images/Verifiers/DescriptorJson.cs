using System.Globalization;
using System.Text;
using Hull.Images.Oci;

namespace Hull.Images.Verifiers;

/// <summary>
/// Writes an OCI descriptor (media type <c>application/vnd.oci.descriptor.v1+json</c>) byte for byte as containerd does:
/// Go's <c>json.Encoder.Encode(ocispec.Descriptor)</c> — field order and <c>omitempty</c> of image-spec's struct tags,
/// annotation keys sorted, HTML-safe string escaping, and a trailing newline.
/// </summary>
public static class DescriptorJson
{
    public const string MediaType = "application/vnd.oci.descriptor.v1+json";

    public static byte[] Serialize(Descriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        var sb = new StringBuilder(256);
        sb.Append('{');
        Key(sb, "mediaType", first: true); String(sb, descriptor.MediaType);
        Key(sb, "digest"); String(sb, descriptor.Digest);
        Key(sb, "size"); sb.Append(descriptor.Size.ToString(CultureInfo.InvariantCulture));
        if (descriptor.Urls is { Count: > 0 } urls) { Key(sb, "urls"); Array(sb, urls); }
        if (descriptor.Annotations is { Count: > 0 } annotations)
        {
            Key(sb, "annotations");
            sb.Append('{');
            bool first = true;
            // Go's encoder sorts map keys.
            foreach (var (k, v) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                Key(sb, k, first);
                String(sb, v);
                first = false;
            }
            sb.Append('}');
        }
        if (descriptor.Platform is { } p)
        {
            Key(sb, "platform");
            sb.Append('{');
            Key(sb, "architecture", first: true); String(sb, p.Architecture);
            Key(sb, "os"); String(sb, p.Os);
            if (!string.IsNullOrEmpty(p.OsVersion)) { Key(sb, "os.version"); String(sb, p.OsVersion); }
            if (p.OsFeatures is { Count: > 0 } features) { Key(sb, "os.features"); Array(sb, features); }
            if (!string.IsNullOrEmpty(p.Variant)) { Key(sb, "variant"); String(sb, p.Variant); }
            sb.Append('}');
        }
        sb.Append("}\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void Key(StringBuilder sb, string key, bool first = false)
    {
        if (!first) sb.Append(',');
        String(sb, key);
        sb.Append(':');
    }

    private static void Array(StringBuilder sb, IReadOnlyList<string> values)
    {
        sb.Append('[');
        for (int i = 0; i < values.Count; i++)
        {
            if (i > 0) sb.Append(',');
            String(sb, values[i]);
        }
        sb.Append(']');
    }

    /// <summary>Go's <c>encodeState.string</c> with <c>escapeHTML</c> on.</summary>
    private static void String(StringBuilder sb, string? value)
    {
        sb.Append('"');
        foreach (char c in value ?? "")
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029' or < ' ':
                    sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default: sb.Append(c); break;
            }
        }
        sb.Append('"');
    }
}
