using System.Globalization;
using System.Text;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>
/// The client's halves of the wire rules <see cref="GrpcProtocol"/> implements for the server, for tests that speak
/// raw HTTP/2: formatting grpc-timeout and decoding grpc-message (clients such as Grpc.Net.Client do both themselves).
/// </summary>
internal static class GrpcWire
{
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
}
