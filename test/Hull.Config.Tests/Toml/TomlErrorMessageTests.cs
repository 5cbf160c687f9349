using System.Text;
using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

/// <summary>Error messages must point at the right line/column and name the offending key.</summary>
public sealed class TomlErrorMessageTests
{
    private static TomlException Reject(string toml, string? source = "config.toml") =>
        Assert.Throws<TomlException>(() => TomlParser.Parse(toml, source));

    [Fact]
    public void DuplicateKeyNamesKeyAndBothLocations()
    {
        TomlException ex = Reject("a = 1\nb = 2\n  a = 3\n");

        Assert.Equal("config.toml:3:3: duplicate key `a` (at line 1, column 1)", ex.Message);
        Assert.Equal((3, 3), (ex.Line, ex.Column));
        Assert.Equal("a", ex.Key);
        Assert.Equal("config.toml", ex.SourceName);
    }

    [Fact]
    public void TableDefinedTwicePointsAtSecondHeaderKey()
    {
        TomlException ex = Reject("[x]\n[y]\n\n  [x]\n");

        Assert.Equal(4, ex.Line);
        Assert.Equal(4, ex.Column);
        Assert.Equal("x", ex.Key);
        Assert.Contains("table `x` is already defined (at line 1, column 2)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeysThatAreNotBareAreQuotedInMessages()
    {
        const string toml = "[plugins.'io.containerd.grpc.v1.cri']\nx = 1\n[plugins.\"io.containerd.grpc.v1.cri\"]\n";

        TomlException ex = Reject(toml);

        Assert.Equal("plugins.'io.containerd.grpc.v1.cri'", ex.Key);
        Assert.Equal((3, 10), (ex.Line, ex.Column));
    }

    [Fact]
    public void DottedKeyIntoHeaderTableIsRejectedAtThatSegment()
    {
        TomlException ex = Reject("[a.b]\nc = 1\n[a]\nx.y = 0\n  b.d = 2\n");

        Assert.Equal((5, 3), (ex.Line, ex.Column));
        Assert.Equal("b", ex.Key);
        Assert.Contains("[header]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidValuePointsAtValueStart()
    {
        TomlException ex = Reject("ok = 1\nport = 12ab\n");

        Assert.StartsWith("config.toml:2:8: invalid number", ex.Message, StringComparison.Ordinal);
        Assert.Null(ex.Key);
    }

    [Fact]
    public void UnterminatedStringPointsAtOpeningQuote()
    {
        TomlException ex = Reject("name = \"abc\nnext = 1\n");

        Assert.Equal((1, 8), (ex.Line, ex.Column));
        Assert.Contains("unterminated string", ex.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("s = \"é\" x\n")] // non-ASCII, one UTF-16 unit
    [InlineData("s = \"😀\" x\n")] // a surrogate pair is a single column
    public void ColumnsCountUnicodeScalarValues(string toml)
    {
        TomlException ex = Reject(toml);

        Assert.Equal((1, 9), (ex.Line, ex.Column));
    }

    [Fact]
    public void LineNumbersFollowCrLfAndMultilineStrings()
    {
        TomlException ex = Reject("a = \"\"\"\r\none\r\ntwo\"\"\"\r\nb = = 1\r\n");

        Assert.Equal((4, 5), (ex.Line, ex.Column));
    }

    [Fact]
    public void InvalidUtf8IsReportedAtFirstBadByte()
    {
        byte[] bytes = [.. Encoding.UTF8.GetBytes("a = 1\nb = \""), 0xFF, .. Encoding.UTF8.GetBytes("\"\n")];

        TomlException ex = Assert.Throws<TomlException>(() => TomlParser.ParseUtf8(bytes, "bad.toml"));

        Assert.StartsWith("bad.toml:2:6: invalid UTF-8", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnonymousSourceStillHasLocation()
    {
        TomlException ex = Reject("= 1\n", source: null);

        Assert.StartsWith("<toml>:1:1: expected a key", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseFileUsesPathAsSourceName()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hull-toml-{Guid.NewGuid():N}.toml");
        File.WriteAllText(path, "a = [1,,2]\n");
        try
        {
            TomlException ex = Assert.Throws<TomlException>(() => TomlParser.ParseFile(path));
            Assert.StartsWith($"{path}:1:8: expected a value, found ','", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
