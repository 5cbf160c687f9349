using Hull.Core;

namespace Hull.Core.Tests;

public class GoDurationTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("0s", 0)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("5m0s", 300_000)]
    [InlineData("4h0m0s", 14_400_000)]
    [InlineData("4h", 14_400_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("100ms", 100)]
    [InlineData(".5s", 500)]
    [InlineData("2s500ms", 2_500)]
    [InlineData("+10s", 10_000)]
    [InlineData("-10s", -10_000)]
    [InlineData("1000us", 1)]
    [InlineData("1000\u00B5s", 1)]
    [InlineData("1000000ns", 1)]
    public void Parses_go_duration_syntax(string text, long milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), GoDuration.Parse(text));

    [Theory]
    [InlineData("", "empty duration")]
    [InlineData("5", "missing unit")]
    [InlineData("10 s", "unknown unit")]
    [InlineData("5 minutes", "unknown unit")]
    [InlineData("1d", "unknown unit \"d\"")]
    [InlineData("s", "expected a number")]
    [InlineData("-", "missing number")]
    [InlineData("1.s5", "missing unit")]
    public void Rejects_what_go_rejects(string text, string reason)
    {
        Assert.False(GoDuration.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(14_400_000, "4h0m0s")]
    [InlineData(300_000, "5m0s")]
    [InlineData(10_000, "10s")]
    [InlineData(2_000, "2s")]
    [InlineData(1_500, "1.5s")]
    [InlineData(100, "100ms")]
    [InlineData(3_723_250, "1h2m3.25s")]
    [InlineData(-90_000, "-1m30s")]
    public void Formats_like_go_duration_string(long milliseconds, string expected) =>
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromMilliseconds(milliseconds)));

    [Fact]
    public void Formats_sub_millisecond_values_in_micro_and_nanoseconds()
    {
        Assert.Equal("1.5\u00B5s", GoDuration.Format(TimeSpan.FromTicks(15)));
        Assert.Equal("100ns", GoDuration.Format(TimeSpan.FromTicks(1)));
    }

    [Theory]
    [InlineData("4h0m0s")]
    [InlineData("1h2m3.25s")]
    [InlineData("100ms")]
    [InlineData("1.5\u00B5s")]
    public void Format_parses_back(string text) => Assert.Equal(text, GoDuration.Format(GoDuration.Parse(text)));
}
