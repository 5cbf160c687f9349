using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Hull.Grpc;

/// <summary>The gRPC-over-HTTP/2 wire rules (grpc/doc/PROTOCOL-HTTP2.md) shared by server and client.</summary>
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

    /// <summary>Formats a timeout with the finest unit that keeps it within 8 digits.</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        long ticks = Math.Max(0, timeout.Ticks);
        long micros = ticks / TimeSpan.TicksPerMicrosecond;
        if (micros < 100_000_000) return $"{Math.Max(micros, 1)}u";
        long millis = ticks / TimeSpan.TicksPerMillisecond;
        if (millis < 100_000_000) return $"{millis}m";
        long seconds = ticks / TimeSpan.TicksPerSecond;
        if (seconds < 100_000_000) return $"{seconds}S";
        return $"{Math.Min(ticks / TimeSpan.TicksPerHour, 99_999_999)}H";
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

    /// <summary>Decodes a percent-encoded status message; malformed escapes are kept as they are.</summary>
    public static string DecodeMessage(string encoded)
    {
        if (!encoded.Contains('%')) return encoded;
        var bytes = new List<byte>(encoded.Length);
        for (int i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%' && i + 2 < encoded.Length &&
                // Exactly two hex digits: HexNumber would also accept white space, turning "50% done" into "50\rone".
                byte.TryParse(encoded.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else bytes.AddRange(Encoding.UTF8.GetBytes(encoded[i].ToString()));
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    public static void WritePrefix(Span<byte> destination, int length, bool compressed = false)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }
}
