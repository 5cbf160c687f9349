using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Hull.Grpc;

/// <summary>The gRPC-over-HTTP/2 wire rules (grpc/doc/PROTOCOL-HTTP2.md) Hull's server follows.</summary>
public static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string TimeoutHeader = "grpc-timeout";
    public const string StatusTrailer = "grpc-status";
    public const string MessageTrailer = "grpc-message";
    public const string EncodingHeader = "grpc-encoding";
    public const int MessagePrefixLength = 5;
    public const int DefaultMaxMessageSize = 16 << 20;

    public static bool IsGrpcContentType(string? contentType) =>
        contentType is not null && contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase) &&
        (contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';');

    /// <summary>Parses a grpc-timeout value ("1S", "250m", at most 8 digits and a unit).</summary>
    public static bool TryParseTimeout(string value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length < 2 || value.Length > 9) return false;
        if (!long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long amount)) return false;
        double ticksPerUnit = value[^1] switch
        {
            'H' => TimeSpan.TicksPerHour,
            'M' => TimeSpan.TicksPerMinute,
            'S' => TimeSpan.TicksPerSecond,
            'm' => TimeSpan.TicksPerMillisecond,
            'u' => TimeSpan.TicksPerMicrosecond,
            'n' => 0.01,
            _ => -1,
        };
        if (ticksPerUnit < 0) return false;
        timeout = TimeSpan.FromTicks((long)Math.Min(amount * ticksPerUnit, TimeSpan.MaxValue.Ticks));
        return true;
    }

    /// <summary>Percent-encodes a status message: UTF-8, with octets outside 0x20..0x7E and '%' escaped.</summary>
    public static string EncodeMessage(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        bool plain = true;
        foreach (var b in bytes) if (b < 0x20 || b > 0x7E || b == '%') { plain = false; break; }
        if (plain) return message;
        var sb = new StringBuilder(bytes.Length + 16);
        foreach (var b in bytes)
        {
            if (b < 0x20 || b > 0x7E || b == '%') sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            else sb.Append((char)b);
        }
        return sb.ToString();
    }

    public static void WritePrefix(Span<byte> destination, int length, bool compressed = false)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }
}
