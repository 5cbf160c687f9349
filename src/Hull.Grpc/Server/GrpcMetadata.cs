using Grpc.Core;
using Hull.Grpc.Hpack;

namespace Hull.Grpc.Server;

/// <summary>
/// Custom metadata between HTTP/2 header fields and <see cref="Metadata"/> (grpc/doc/PROTOCOL-HTTP2.md): "-bin" keys
/// carry base64 (sent unpadded, accepted either way); pseudo-headers and the headers gRPC itself uses are not metadata.
/// </summary>
internal static class GrpcMetadata
{
    public static Metadata FromHeaders(IReadOnlyList<HeaderField> headers)
    {
        var metadata = new Metadata();
        foreach (var h in headers)
        {
            if (IsReserved(h.Name)) continue;
            try
            {
                if (h.Name.EndsWith(Metadata.BinaryHeaderSuffix, StringComparison.Ordinal)) metadata.Add(h.Name, FromBase64(h.Value));
                else metadata.Add(h.Name, h.Value);
            }
            catch (FormatException) { } // a "-bin" value that is not base64: not readable metadata
            catch (ArgumentException) { } // a name Metadata does not accept (HTTP allows more characters than gRPC)
        }
        return metadata;
    }

    public static void AppendTo(List<HeaderField> headers, Metadata metadata)
    {
        foreach (var entry in metadata)
        {
            if (IsReserved(entry.Key)) continue;
            headers.Add(new HeaderField(entry.Key, entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes).TrimEnd('=') : entry.Value));
        }
    }

    private static bool IsReserved(string name) =>
        name.StartsWith(':') || name is "content-type" or "te" || name.StartsWith("grpc-", StringComparison.Ordinal);

    private static byte[] FromBase64(string value) =>
        Convert.FromBase64String((value.Length % 4) switch { 2 => value + "==", 3 => value + "=", _ => value });
}
