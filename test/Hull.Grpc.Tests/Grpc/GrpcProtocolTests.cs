namespace Hull.Grpc.Tests.Grpc;

/// <summary>The wire rules of grpc/doc/PROTOCOL-HTTP2.md implemented by <see cref="GrpcProtocol"/>.</summary>
public class GrpcProtocolTests
{
    public static TheoryData<string, long> ValidTimeouts => new()
    {
        { "1S", TimeSpan.TicksPerSecond },
        { "250m", 250 * TimeSpan.TicksPerMillisecond },
        { "100u", 100 * TimeSpan.TicksPerMicrosecond },
        { "1000n", 10 },
        { "5n", 0 },
        { "0m", 0 },
        { "2M", 2 * TimeSpan.TicksPerMinute },
        { "3H", 3 * TimeSpan.TicksPerHour },
        { "00000001S", TimeSpan.TicksPerSecond },
        { "99999999S", 99_999_999 * TimeSpan.TicksPerSecond },
        { "99999999H", 99_999_999 * TimeSpan.TicksPerHour },
    };

    [Theory]
    [MemberData(nameof(ValidTimeouts))]
    public void ParsesValidTimeouts(string value, long ticks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(value, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("1")]
    [InlineData("10")]
    [InlineData("1s")]
    [InlineData("1h")]
    [InlineData("1x")]
    [InlineData("123456789S")] // nine digits
    [InlineData("-1S")]
    [InlineData("+1S")]
    [InlineData(" 1S")]
    [InlineData("1 S")]
    [InlineData("1.5S")]
    [InlineData("1e3m")]
    [InlineData("0x1S")]
    [InlineData("\uFF11S")] // fullwidth digit one
    [InlineData("1SS")]
    public void RejectsMalformedTimeouts(string value) =>
        Assert.False(GrpcProtocol.TryParseTimeout(value, out _));

    [Theory]
    [InlineData(0, "1u")]
    [InlineData(-5_000_000, "1u")]
    [InlineData(1, "1u")]
    [InlineData(10, "1u")]
    [InlineData(TimeSpan.TicksPerSecond, "1000000u")]
    [InlineData(99_999_999 * TimeSpan.TicksPerMicrosecond, "99999999u")]
    [InlineData(100_000_000 * TimeSpan.TicksPerMicrosecond, "100000m")]
    [InlineData(200 * TimeSpan.TicksPerSecond, "200000m")]
    [InlineData(100_000_000 * TimeSpan.TicksPerMillisecond, "100000S")]
    [InlineData(100_000_000 * TimeSpan.TicksPerSecond, "27777H")]
    [InlineData(long.MaxValue, "99999999H")]
    public void FormatsTimeoutsWithinEightDigits(long ticks, string expected) =>
        Assert.Equal(expected, GrpcWire.FormatTimeout(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void FormattedTimeoutsParseBackToAtMostTheOriginal()
    {
        var random = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            long ticks = (long)(Math.Pow(10, random.NextDouble() * 17) * (1 + random.NextDouble()));
            var original = TimeSpan.FromTicks(ticks);
            string formatted = GrpcWire.FormatTimeout(original);
            Assert.InRange(formatted.Length, 2, 9);
            Assert.True(GrpcProtocol.TryParseTimeout(formatted, out var parsed), formatted);
            if (ticks >= TimeSpan.TicksPerMicrosecond) Assert.True(parsed <= original, $"{formatted} > {original}");
            // Truncation loses less than one unit, and units are chosen to keep 8 significant digits.
            Assert.True(original - parsed < TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMicrosecond, ticks / 100_000 + 1)) || formatted.EndsWith('H'),
                $"{original} formatted as {formatted}");
        }
    }

    [Theory]
    [InlineData("plain ascii message", "plain ascii message")]
    [InlineData("", "")]
    [InlineData("~ and space", "~ and space")]
    [InlineData("50%", "50%25")]
    [InlineData("über", "%C3%BCber")]
    [InlineData("a\nb\tc\r", "a%0Ab%09c%0D")]
    [InlineData("\u007F", "%7F")]
    [InlineData("\U0001F600", "%F0%9F%98%80")]
    [InlineData("✓", "%E2%9C%93")]
    public void EncodesStatusMessages(string message, string encoded)
    {
        Assert.Equal(encoded, GrpcProtocol.EncodeMessage(message));
        Assert.Equal(message, GrpcWire.DecodeMessage(encoded));
    }

    [Theory]
    [InlineData("%")]
    [InlineData("100%")]
    [InlineData("%4")]
    [InlineData("%zz")]
    [InlineData("%G1")]
    [InlineData("50% done")]
    [InlineData("% d")]
    [InlineData("%1 ")]
    [InlineData("%+1")]
    [InlineData("%-1")]
    public void KeepsMalformedEscapesAsTheyAre(string encoded) =>
        Assert.Equal(encoded, GrpcWire.DecodeMessage(encoded));

    [Fact]
    public void DecodesLowercaseHexAndMixedText() =>
        Assert.Equal("ü%x", GrpcWire.DecodeMessage("%c3%bc%25x"));

    [Fact]
    public void StatusMessagesRoundTripForRandomText()
    {
        var random = new Random(42);
        for (int i = 0; i < 2000; i++)
        {
            var chars = new System.Text.StringBuilder();
            int length = random.Next(0, 40);
            for (int j = 0; j < length; j++)
            {
                int kind = random.Next(4);
                if (kind == 0) chars.Append((char)random.Next(0x20, 0x7F));
                else if (kind == 1) chars.Append((char)random.Next(0, 0x20));
                else if (kind == 2) chars.Append((char)random.Next(0xA0, 0xD7FF));
                else chars.Append(char.ConvertFromUtf32(random.Next(0x10000, 0x10FFFF)));
            }
            string message = chars.ToString();
            string encoded = GrpcProtocol.EncodeMessage(message);
            Assert.All(encoded, c => Assert.InRange(c, (char)0x20, (char)0x7E));
            Assert.Equal(message, GrpcWire.DecodeMessage(encoded));
        }
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc+json", true)]
    [InlineData("application/grpc;charset=utf-8", true)]
    [InlineData("APPLICATION/GRPC", true)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData("text/plain", false)]
    [InlineData("application/", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void RecognisesGrpcContentTypes(string? contentType, bool expected) =>
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));

    [Theory]
    [InlineData(0, false, "0000000000")]
    [InlineData(1024, false, "0000000400")]
    [InlineData(0x01020304, true, "0101020304")]
    [InlineData(int.MaxValue, false, "007FFFFFFF")]
    public void WritesMessagePrefixes(int length, bool compressed, string hex)
    {
        var prefix = new byte[GrpcProtocol.MessagePrefixLength];
        GrpcProtocol.WritePrefix(prefix, length, compressed);
        Assert.Equal(hex, Convert.ToHexString(prefix));
    }
}
