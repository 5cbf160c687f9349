using Hull.Config.TomlFiles;
using Tomlyn;
using Tomlyn.Model;

namespace Hull.Config.Tests.Toml;

/// <summary>What a config file reads as: Tomlyn's model, with where each key was written (<see cref="ConfigDocument"/>).</summary>
public sealed class TomlReadingTests
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

    private static TomlTable Read(string toml) => ConfigDocument.Parse(toml, "config.toml").Root;

    private static string Rejection(string toml) => Assert.Throws<ConfigException>(() => Read(toml)).Message;

    [Fact]
    public void Records_where_each_key_was_defined()
    {
        var document = ConfigDocument.Parse(ContainerdConfig, "config.toml");
        var root = document.Root;
        var at = document.Positions;

        Assert.Equal(new SourcePosition(1, 1), at.Get(root, "version"));
        Assert.Equal(new SourcePosition(4, 2), at.Get(root, "plugins")); // created by the first header through it

        var plugins = (TomlTable)root["plugins"];
        var runtime = (TomlTable)plugins["io.containerd.cri.v1.runtime"];
        Assert.Equal(new SourcePosition(4, 10), at.Get(plugins, "io.containerd.cri.v1.runtime"));
        Assert.Equal(new SourcePosition(5, 3), at.Get(runtime, "enable_selinux"));
        Assert.Equal(SourcePosition.None, at.Get(runtime, "nope"));

        var runtimes = (TomlTable)((TomlTable)runtime["containerd"])["runtimes"];
        Assert.Equal(new SourcePosition(7, 63), at.Get(runtimes, "runc"));
        var runc = (TomlTable)runtimes["runc"];
        Assert.Equal(new SourcePosition(9, 5), at.Get(runc, "options"));
        Assert.Equal(new SourcePosition(9, 17), at.Get((TomlTable)runc["options"], "SystemdCgroup"));

        var list = (TomlTableArray)((TomlTable)root["proxy_plugins"])["list"];
        Assert.Equal(new SourcePosition(14, 1), at.Get(list[1], "name"));
    }

    [Fact]
    public void A_header_defines_a_table_that_a_longer_header_created_on_the_way()
    {
        var document = ConfigDocument.Parse("[a.b.c]\nx = 1\n\n[a]\ny = 2\n", "config.toml");

        Assert.Equal(new SourcePosition(4, 2), document.Positions.Get(document.Root, "a"));
    }

    [Fact]
    public void Tells_tables_inline_tables_and_arrays_of_tables_apart()
    {
        var root = Read(ContainerdConfig);

        var plugins = (TomlTable)root["plugins"];
        Assert.Equal(ObjectKind.Table, ((TomlTable)plugins["io.containerd.cri.v1.runtime"]).Kind);

        var list = (TomlTableArray)((TomlTable)root["proxy_plugins"])["list"];
        Assert.Equal(["a", "b"], list.Select(t => (string)t["name"]));

        var inline = Read("a.b = 1\nc = [{ d = 1 }]\ne = { f = 1 }");
        Assert.Equal(ObjectKind.Table, ((TomlTable)inline["a"]).Kind);
        Assert.IsType<TomlArray>(inline["c"]); // an inline array of inline tables is not a [[table]] array
        Assert.Equal(ObjectKind.InlineTable, ((TomlTable)inline["e"]).Kind);
    }

    [Fact]
    public void Keeps_key_order()
    {
        Assert.Equal(["z", "a", "m", "b"], Read("z = 1\na = 2\n[m]\n[b]\n").Keys);
    }

    [Theory]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    [InlineData("0x7FFF_FFFF_FFFF_FFFF", long.MaxValue)]
    [InlineData("0o777", 511L)]
    [InlineData("0b1010", 10L)]
    [InlineData("+1_000", 1000L)]
    [InlineData("-0", 0L)]
    public void Reads_integers(string literal, long expected)
    {
        Assert.Equal(expected, Read($"v = {literal}")["v"]);
    }

    [Theory]
    [InlineData("9223372036854775808")]
    [InlineData("-9223372036854775809")]
    [InlineData("0x8000000000000000")] // Tomlyn alone reads this as long.MinValue
    [InlineData("0xFFFFFFFFFFFFFFFF")] // ... and this as -1
    [InlineData("0b1000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("0o1000000000000000000000")]
    [InlineData("0xFFFFFFFFFFFFFFFFFF")]
    public void Rejects_integers_out_of_range_pointing_at_them(string literal)
    {
        Assert.StartsWith("config.toml:1:5: ", Rejection($"v = {literal}"));
    }

    [Fact]
    public void A_float_beyond_double_reads_as_infinity()
    {
        // TOML 1.0 says floats are IEEE 754 binary64 and is silent on overflow; Tomlyn rounds to infinity (Hull's
        // own parser rejected it). No config key takes a float.
        Assert.Equal(double.PositiveInfinity, Read("v = 1e400")["v"]);
    }

    [Fact]
    public void Date_times_keep_their_kind_and_precision()
    {
        var root = Read("""
            odt = 1979-05-27 07:32:00.1234567-07:00
            ldt = 1979-05-27t07:32:00.5
            ld = 1979-05-27
            lt = 07:32:00.000100
            """);

        var odt = (TomlDateTime)root["odt"];
        Assert.Equal(TomlDateTimeKind.OffsetDateTimeByNumber, odt.Kind);
        Assert.Equal(new DateTimeOffset(1979, 5, 27, 7, 32, 0, TimeSpan.FromHours(-7)).AddTicks(1234567), odt.DateTime);
        Assert.Equal("1979-05-27T07:32:00.1234567-07:00", odt.ToString());

        Assert.Equal("1979-05-27T07:32:00.5", root["ldt"].ToString());
        Assert.Equal(TomlDateTimeKind.LocalDate, ((TomlDateTime)root["ld"]).Kind);
        Assert.Equal("07:32:00.000100", root["lt"].ToString());
    }

    [Theory]
    [InlineData("2024-02-29", true)]
    [InlineData("2000-02-29", true)]
    [InlineData("1900-02-29", false)]
    [InlineData("2023-04-31", false)]
    [InlineData("24:00:00", false)]
    [InlineData("2023-01-01T00:00:00+14:00", true)]
    [InlineData("2023-01-01T00:00:00+24:00", false)]
    public void Checks_date_time_ranges(string literal, bool valid)
    {
        Assert.Equal(valid, Accepts($"v = {literal}"));
    }

    /// <summary>
    /// Valid TOML 1.0 that Tomlyn rejects, because it keeps date-times as <see cref="DateTimeOffset"/>: more than 7
    /// fractional digits (TOML says to truncate them), the leap second 60, and offsets beyond ±14:00. Hull accepts
    /// that: no containerd or Hull config key takes a date-time. toml-test's valid cases have none of these.
    /// </summary>
    [Theory]
    [InlineData("1979-05-27T07:32:00.123456789Z")]
    [InlineData("23:59:60")]
    [InlineData("2023-01-01T00:00:00+23:59")]
    public void Date_times_that_a_DateTimeOffset_cannot_hold_are_rejected(string literal)
    {
        Assert.StartsWith("config.toml:1:5: ", Rejection($"v = {literal}"));
    }

    [Fact]
    public void Multiline_strings_trim_the_first_newline_and_at_a_line_ending_backslash()
    {
        var root = Read("a = \"\"\"\r\none\r\ntwo \\\r\n   three\"\"\"\r\nb = '''\r\nx\r\n'''\r\n");

        // TOML lets parsers normalise newlines; Tomlyn keeps them as written (Hull's own parser wrote \n).
        Assert.Equal("one\r\ntwo three", root["a"]);
        Assert.Equal("x\r\n", root["b"]);
    }

    [Fact]
    public void A_leading_byte_order_mark_is_ignored_in_text_and_bytes()
    {
        Assert.Equal(1L, Read("\uFEFFa = 1")["a"]);
        Assert.Equal(1L, ConfigDocument.ParseUtf8([0xEF, 0xBB, 0xBF, (byte)'a', (byte)'=', (byte)'1']).Root["a"]);
    }

    [Fact]
    public void Unpaired_surrogates_in_text_are_rejected()
    {
        Assert.StartsWith("config.toml:1:", Rejection("a = \"\uD800\""));
    }

    [Fact]
    public void Hostile_nesting_is_a_config_exception_not_a_stack_overflow()
    {
        string message = Rejection("a = " + new string('[', 100_000));
        Assert.Equal("config.toml: arrays and inline tables are nested too deeply", message);
    }

    [Fact]
    public void Dotted_keys_may_extend_tables_that_headers_created_on_the_way()
    {
        var root = Read("[a.b.c]\nx = 1\n[a]\nb.d = 2\n");

        Assert.Equal(2L, ((TomlTable)((TomlTable)root["a"])["b"])["d"]);

        // Then a [a.b] header: TOML 1.0 says dotted keys define only the tables "not previously created", and a.b was
        // (by [a.b.c]), so the header is its first definition. Tomlyn reads it so; Hull's own parser called it a
        // redefinition. toml-test has no case for it.
        var later = Read("[a.b.c]\n[a]\nb.d = 2\n[a.b]\ne = 3\n");
        Assert.Equal(["c", "d", "e"], ((TomlTable)((TomlTable)later["a"])["b"]).Keys);
    }

    [Theory]
    [InlineData("t = { a = 1,\n b = 2 }", "1:5: an inline table written over several lines is TOML 1.1")]
    [InlineData("t = { a = 1 # note\n }", "1:5: an inline table written over several lines is TOML 1.1")]
    [InlineData("t = { a = 1, }", "1:12: a trailing comma in an inline table is TOML 1.1")]
    [InlineData("x = 1\ns = \"tab\\x09\"", "2:9: the escape `\\x` is TOML 1.1")]
    [InlineData("\"key\\e\" = 1", "1:5: the escape `\\e` is TOML 1.1")]
    [InlineData("t = 07:32", "1:5: a time without seconds is TOML 1.1")]
    [InlineData("t = 1979-05-27T07:32Z", "1:5: a time without seconds is TOML 1.1")]
    public void Toml11_syntax_is_rejected_where_it_is_written(string toml, string expected)
    {
        string message = Rejection(toml);
        Assert.StartsWith("config.toml:" + expected, message);
        Assert.Contains("containerd reads TOML 1.0", message);
    }

    [Theory]
    [InlineData("t = { a = [\n1,\n2], b = \"\"\"x\ny\"\"\" }")] // newlines inside values were always allowed
    [InlineData("t = { a = { b = 1 }, c = [{ d = 1 }] }")]
    [InlineData("s = \"\\\\x and \\\\e are escaped backslashes\"")]
    [InlineData("s = 'C:\\x\\e is literal'")]
    [InlineData("t = 1979-05-27T07:32:00-07:00")]
    public void Toml10_that_looks_like_toml11_is_read(string toml)
    {
        Assert.True(Accepts(toml), toml);
    }

    private static bool Accepts(string toml)
    {
        try
        {
            Read(toml);
            return true;
        }
        catch (ConfigException)
        {
            return false;
        }
    }
}
