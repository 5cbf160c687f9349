using Hull.Config.Toml;

namespace Hull.Config.Tests.Toml;

public sealed class TomlParserTests
{
    private const string ContainerdConfig = """
        version = 3
        root = "/var/lib/containerd"

        [plugins.'io.containerd.cri.v1.runtime']
          enable_selinux = false

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
            runtime_type = "io.containerd.runc.v2"
            options = { SystemdCgroup = true }

        [[proxy_plugins.list]]
        name = "a"
        [[proxy_plugins.list]]
        name = "b"
        """;

    [Fact]
    public void RecordsWhereEachKeyWasDefined()
    {
        TomlTable root = TomlParser.Parse(ContainerdConfig, "config.toml").Root;

        Assert.Equal(new TomlPosition(1, 1), root.GetPosition("version"));
        Assert.Equal(new TomlPosition(4, 2), root.GetPosition("plugins"));

        var plugins = (TomlTable)root["plugins"];
        var runtime = (TomlTable)plugins["io.containerd.cri.v1.runtime"];
        Assert.Equal(new TomlPosition(4, 10), plugins.GetPosition("io.containerd.cri.v1.runtime"));
        Assert.Equal(new TomlPosition(5, 3), runtime.GetPosition("enable_selinux"));
        Assert.Equal(TomlPosition.None, runtime.GetPosition("nope"));

        var runc = (TomlTable)((TomlTable)((TomlTable)runtime["containerd"])["runtimes"])["runc"];
        Assert.Equal(new TomlPosition(7, 63), runc.Position);
        Assert.Equal(new TomlPosition(9, 5), runc.GetPosition("options"));
        Assert.Equal(TomlTableKind.Inline, ((TomlTable)runc["options"]).Kind);
        Assert.Equal(new TomlPosition(9, 5), ((TomlTable)runc["options"]).Position);
    }

    [Fact]
    public void DistinguishesTableKindsAndArraysOfTables()
    {
        TomlTable root = TomlParser.Parse(ContainerdConfig).Root;

        var plugins = (TomlTable)root["plugins"];
        Assert.Equal(TomlTableKind.Implicit, plugins.Kind);
        Assert.Equal(TomlTableKind.Header, ((TomlTable)plugins["io.containerd.cri.v1.runtime"]).Kind);

        var list = (TomlArray)((TomlTable)root["proxy_plugins"])["list"];
        Assert.True(list.IsArrayOfTables);
        Assert.Equal(["a", "b"], list.Cast<TomlTable>().Select(t => (string)t["name"]));

        TomlTable dotted = TomlParser.Parse("a.b = 1\nc = [{ d = 1 }]").Root;
        Assert.Equal(TomlTableKind.Dotted, ((TomlTable)dotted["a"]).Kind);
        Assert.False(((TomlArray)dotted["c"]).IsArrayOfTables);
    }

    [Fact]
    public void PreservesKeyInsertionOrder()
    {
        TomlTable root = TomlParser.Parse("z = 1\na = 2\n[m]\n[b]\n").Root;

        Assert.Equal(["z", "a", "m", "b"], root.Keys);
    }

    [Theory]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    [InlineData("0x7FFF_FFFF_FFFF_FFFF", long.MaxValue)]
    [InlineData("0o777", 511L)]
    [InlineData("0b1010", 10L)]
    [InlineData("+1_000", 1000L)]
    [InlineData("-0", 0L)]
    public void ParsesIntegers(string literal, long expected)
    {
        Assert.Equal(expected, TomlParser.Parse($"v = {literal}").Root["v"]);
    }

    [Theory]
    [InlineData("9223372036854775808")]
    [InlineData("-9223372036854775809")]
    [InlineData("0x8000000000000000")]
    [InlineData("0xFFFFFFFFFFFFFFFFFF")]
    [InlineData("1e400")]
    public void RejectsOutOfRangeNumbers(string literal)
    {
        TomlException ex = Assert.Throws<TomlException>(() => TomlParser.Parse($"v = {literal}"));
        Assert.Contains("out of range", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DateTimesKeepKindAndPrecision()
    {
        TomlTable root = TomlParser.Parse("""
            odt = 1979-05-27 07:32:00.123456789-07:00
            ldt = 1979-05-27t07:32:00.5
            ld = 1979-05-27
            lt = 07:32:00.000100
            long = 1979-05-27T07:32:00.1234567891234z
            """).Root;

        var odt = (TomlDateTime)root["odt"];
        Assert.Equal(TomlDateTimeKind.OffsetDateTime, odt.Kind);
        Assert.Equal(123456789, odt.Nanosecond);
        Assert.Equal(-7 * 60, odt.OffsetMinutes);
        Assert.Equal("1979-05-27T07:32:00.123456789-07:00", odt.ToString());
        Assert.Equal(new DateTimeOffset(1979, 5, 27, 7, 32, 0, TimeSpan.FromHours(-7)).AddTicks(1234567), odt.ToDateTimeOffset());

        Assert.Equal("1979-05-27T07:32:00.5", root["ldt"].ToString());
        Assert.Equal(new DateOnly(1979, 5, 27), ((TomlDateTime)root["ld"]).ToDateOnly());
        Assert.Equal("07:32:00.000100", root["lt"].ToString());

        // Beyond nanoseconds the spec requires truncation, not rounding.
        Assert.Equal("1979-05-27T07:32:00.123456789Z", root["long"].ToString());
    }

    [Theory]
    [InlineData("2024-02-29", true)]
    [InlineData("2000-02-29", true)]
    [InlineData("1900-02-29", false)]
    [InlineData("2023-04-31", false)]
    [InlineData("23:59:60", true)]
    [InlineData("24:00:00", false)]
    [InlineData("2023-01-01T00:00:00+23:59", true)]
    [InlineData("2023-01-01T00:00:00+24:00", false)]
    public void ValidatesDateTimeRanges(string literal, bool valid)
    {
        Assert.Equal(valid, TomlDateTime.TryParse(literal, out _));
    }

    [Fact]
    public void MultilineStringsNormaliseCrLfAndTrimLineEndingBackslash()
    {
        TomlTable root = TomlParser.Parse("a = \"\"\"\r\none\r\ntwo \\\r\n   three\"\"\"\r\nb = '''\r\nx\r\n'''\r\n").Root;

        Assert.Equal("one\ntwo three", root["a"]);
        Assert.Equal("x\n", root["b"]);
    }

    [Fact]
    public void AcceptsLeadingByteOrderMarkInStringsAndBytes()
    {
        Assert.Equal(1L, TomlParser.Parse("\uFEFFa = 1").Root["a"]);
        Assert.Equal(1L, TomlParser.ParseUtf8([0xEF, 0xBB, 0xBF, (byte)'a', (byte)'=', (byte)'1']).Root["a"]);
    }

    [Fact]
    public void RejectsUnpairedSurrogatesInStringInput()
    {
        Assert.Throws<TomlException>(() => TomlParser.Parse("a = \"\uD800\""));
    }

    [Fact]
    public void RejectsHostileNestingWithTomlException()
    {
        string deep = "a = " + new string('[', 100_000);

        TomlException ex = Assert.Throws<TomlException>(() => TomlParser.Parse(deep));
        Assert.Contains("nested", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DottedKeysMayExtendTablesCreatedOnlyImplicitlyByHeaders()
    {
        TomlTable root = TomlParser.Parse("[a.b.c]\nx = 1\n[a]\nb.d = 2\n").Root;

        var b = (TomlTable)((TomlTable)root["a"])["b"];
        Assert.Equal(2L, b["d"]);

        // ... which defines that table, so a header for it afterwards is a redefinition.
        Assert.Throws<TomlException>(() => TomlParser.Parse("[a.b.c]\n[a]\nb.d = 2\n[a.b]\n"));
    }
}
