using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("1s", 1000)]
    [InlineData("300ms", 300)]
    [InlineData("1.5s", 1500)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("0", 0)]
    [InlineData("2000us", 2)]
    [InlineData("-1s", -1000)]
    public void Parses_go_durations(string text, long milliseconds)
    {
        Assert.True(GoDuration.TryParse(text, out TimeSpan d));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), d);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("s")]
    [InlineData("1x")]
    [InlineData("1 s")]
    public void Rejects_malformed_durations(string text)
    {
        Assert.False(GoDuration.TryParse(text, out _));
    }
}
