using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

public sealed class TomlWriterTests
{
    [Fact]
    public void QuotesKeysThatAreNotBare()
    {
        var runtime = new TomlTable { ["enable_selinux"] = false };
        var root = new TomlTable
        {
            ["version"] = 3,
            ["plugins"] = new TomlTable { ["io.containerd.cri.v1.runtime"] = runtime },
        };

        string toml = TomlWriter.Write(root);

        Assert.Equal("version = 3\n\n[plugins.'io.containerd.cri.v1.runtime']\nenable_selinux = false\n", toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void WritesArraysOfTablesAsDoubleBracketSections()
    {
        var list = new TomlArray(isArrayOfTables: true)
        {
            new TomlTable { ["name"] = "a", ["sub"] = new TomlTable { ["x"] = 1 } },
            new TomlTable { ["name"] = "b" },
        };
        var root = new TomlTable { ["list"] = list, ["static"] = new TomlArray { new TomlTable { ["k"] = "v" } } };

        string toml = TomlWriter.Write(root);

        Assert.Equal(
            "static = [{ k = \"v\" }]\n\n[[list]]\nname = \"a\"\n\n[list.sub]\nx = 1\n\n[[list]]\nname = \"b\"\n",
            toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void KeepsInlineTablesInline()
    {
        TomlDocument doc = TomlParser.Parse("[r]\noptions = { SystemdCgroup = true, \"a b\" = { c = [] } }\n");

        Assert.Equal("[r]\noptions = { SystemdCgroup = true, 'a b' = { c = [] } }\n", TomlWriter.Write(doc));
    }

    [Theory]
    [InlineData(1.0, "1.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e300, "1E+300")]
    [InlineData(5e-324, "5E-324")]
    [InlineData(double.PositiveInfinity, "inf")]
    [InlineData(double.NegativeInfinity, "-inf")]
    [InlineData(double.NaN, "nan")]
    public void FormatsFloatsSoTheyReadBackAsFloats(double value, string expected)
    {
        Assert.Equal(expected, TomlWriter.FormatValue(value));
        AssertRoundTrips(new TomlTable { ["f"] = value });
    }

    [Fact]
    public void EscapesStringsAndKeys()
    {
        var root = new TomlTable
        {
            ["s"] = "tab\tquote\"back\\slash\u0001del\u007f\nnewline",
            ["it's"] = "apostrophe forces basic quotes",
            [""] = "empty key",
            ["ключ"] = "unicode",
        };

        string toml = TomlWriter.Write(root);

        Assert.Contains("s = \"tab\\tquote\\\"back\\\\slash\\u0001del\\u007F\\nnewline\"", toml, StringComparison.Ordinal);
        Assert.Contains("\"it's\" = ", toml, StringComparison.Ordinal);
        Assert.Contains("\"\" = \"empty key\"", toml, StringComparison.Ordinal);
        Assert.Contains("'ключ' = ", toml, StringComparison.Ordinal);
        AssertRoundTrips(root);
    }

    [Fact]
    public void WritesEmptyTablesAndSkipsHeadersOfPureParents()
    {
        var root = new TomlTable
        {
            ["a"] = new TomlTable { ["b"] = new TomlTable { ["c"] = new TomlTable() } },
            ["empty_aot"] = new TomlArray(isArrayOfTables: true),
        };

        string toml = TomlWriter.Write(root);

        Assert.Equal("empty_aot = []\n\n[a.b.c]\n", toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void WritesAllDateTimeKinds()
    {
        var root = new TomlTable
        {
            ["odt"] = new DateTimeOffset(2024, 2, 29, 12, 0, 0, 500, TimeSpan.FromMinutes(330)),
            ["ldt"] = TomlDateTime.FromLocalDateTime(new DateTime(2024, 1, 2, 3, 4, 5)),
            ["ld"] = new DateOnly(2024, 1, 2),
            ["lt"] = new TimeOnly(23, 59, 59),
        };

        Assert.Equal(
            "odt = 2024-02-29T12:00:00.5+05:30\nldt = 2024-01-02T03:04:05\nld = 2024-01-02\nlt = 23:59:59\n",
            TomlWriter.Write(root));
        AssertRoundTrips(root);
    }

    [Fact]
    public void RejectsValuesTomlCannotRepresent()
    {
        var table = new TomlTable();

        Assert.Throws<ArgumentException>(() => table.Add("x", new object()));
        Assert.Throws<ArgumentNullException>(() => table.Add("x", null!));
    }

    private static void AssertRoundTrips(TomlTable root)
    {
        string toml = TomlWriter.Write(root);
        TomlTable reparsed = TomlParser.Parse(toml).Root;
        string? diff = TomlTreeComparer.Diff(root, reparsed);
        Assert.True(diff is null, $"{diff}\n---\n{toml}");
    }
}
