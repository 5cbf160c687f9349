using Hull.Config.TomlFiles;
using Tomlyn;
using Tomlyn.Model;

namespace Hull.Config.Tests.Toml;

/// <summary>What <c>hulld config dump|default|migrate</c> write (Tomlyn's serializer): TOML 1.0 that reads back the same.</summary>
public sealed class TomlWriterTests
{
    [Fact]
    public void Quotes_keys_that_are_not_bare()
    {
        var root = new TomlTable
        {
            ["version"] = 3L,
            ["plugins"] = new TomlTable { ["io.containerd.cri.v1.runtime"] = new TomlTable { ["enable_selinux"] = false } },
        };

        string toml = TomlText.Write(root);

        Assert.StartsWith("version = 3\n", toml);
        Assert.Contains("\n[plugins.\"io.containerd.cri.v1.runtime\"]\nenable_selinux = false\n", toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void Writes_arrays_of_tables_as_double_bracket_sections_and_keeps_inline_ones_inline()
    {
        var list = new TomlTableArray
        {
            new TomlTable { ["name"] = "a", ["sub"] = new TomlTable { ["x"] = 1L } },
            new TomlTable { ["name"] = "b" },
        };
        var root = new TomlTable { ["list"] = list, ["static"] = new TomlArray { new TomlTable(inline: true) { ["k"] = "v" } } };

        string toml = TomlText.Write(root);

        Assert.Contains("static = [{k = \"v\"}]\n", toml);
        Assert.Contains("[[list]]\nname = \"a\"\n\n[list.sub]\nx = 1\n\n[[list]]\nname = \"b\"\n", toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void Keeps_inline_tables_inline()
    {
        var document = ConfigDocument.Parse("[r]\noptions = { SystemdCgroup = true, \"a b\" = { c = [] } }\n");

        Assert.Equal("[r]\noptions = {SystemdCgroup = true, \"a b\" = {c = []}}\n", TomlText.Write(document.Root));
    }

    [Theory]
    [InlineData(1.0, "1.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e300, "1E+300")]
    [InlineData(5e-324, "5E-324")]
    [InlineData(double.PositiveInfinity, "+inf")]
    [InlineData(double.NegativeInfinity, "-inf")]
    [InlineData(double.NaN, "nan")]
    public void Writes_floats_so_they_read_back_as_floats(double value, string expected)
    {
        Assert.Equal(expected, TomlText.FormatValue(value));
        AssertRoundTrips(new TomlTable { ["f"] = value });
    }

    [Fact]
    public void Escapes_strings_and_keys_in_TOML_10()
    {
        var root = new TomlTable
        {
            ["s"] = "tab\tquote\"back\\slash\u0001del\u007f\u001besc\nnewline",
            ["it's"] = "apostrophe",
            [""] = "empty key",
            ["ключ"] = "unicode",
        };

        string toml = TomlText.Write(root);

        Assert.Contains("s = \"tab\\tquote\\\"back\\\\slash\\u0001del\\u007F\\u001Besc\\nnewline\"", toml);
        Assert.Contains("\"it's\" = ", toml);
        Assert.Contains("\"\" = \"empty key\"", toml);
        Assert.Contains("\"ключ\" = ", toml);
        AssertRoundTrips(root); // also: nothing TOML 1.1 only, such as \e or \x1B
    }

    [Fact]
    public void Writes_empty_tables()
    {
        var root = new TomlTable { ["a"] = new TomlTable { ["b"] = new TomlTable { ["c"] = new TomlTable() } }, ["empty"] = new TomlArray() };

        string toml = TomlText.Write(root);

        Assert.Contains("empty = []\n", toml);
        Assert.Contains("[a.b.c]\n", toml);
        AssertRoundTrips(root);
    }

    [Fact]
    public void Writes_all_date_time_kinds()
    {
        var root = new TomlTable
        {
            ["odt"] = new TomlDateTime(new DateTimeOffset(2024, 2, 29, 12, 0, 0, 500, TimeSpan.FromMinutes(330)), 1, TomlDateTimeKind.OffsetDateTimeByNumber),
            ["ldt"] = new TomlDateTime(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero), 0, TomlDateTimeKind.LocalDateTime),
            ["ld"] = new TomlDateTime(2024, 1, 2),
            ["lt"] = new TomlDateTime(new DateTimeOffset(1, 1, 1, 23, 59, 59, TimeSpan.Zero), 0, TomlDateTimeKind.LocalTime),
        };

        Assert.Equal("odt = 2024-02-29T12:00:00.5+05:30\nldt = 2024-01-02T03:04:05\nld = 2024-01-02\nlt = 23:59:59\n", TomlText.Write(root));
        AssertRoundTrips(root);
    }

    [Fact]
    public void Values_TOML_cannot_hold_are_refused()
    {
        Assert.Throws<TomlException>(() => TomlText.Write(new TomlTable { ["x"] = new object() }));
        Assert.Throws<ArgumentException>(() => TomlText.FormatValue(new object()));
    }

    private static void AssertRoundTrips(TomlTable root)
    {
        string toml = TomlText.Write(root);
        var reread = ConfigDocument.Parse(toml).Root;
        string? diff = TomlTreeComparer.Diff(root, reread);
        Assert.True(diff is null, $"{diff}\n---\n{toml}");
    }
}
