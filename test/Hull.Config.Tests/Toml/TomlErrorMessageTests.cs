using System.Text;
using Hull.Config.Tests.Config;

namespace Hull.Config.Tests.Toml;

/// <summary>A config file that is not valid TOML is refused with a message naming the file, the line and the column.</summary>
public sealed class TomlErrorMessageTests
{
    private static string Reject(string toml, string? source = "config.toml") =>
        Assert.Throws<ConfigException>(() => ConfigLoader.LoadText(toml, source)).Message;

    [Fact]
    public void A_duplicate_key_names_the_key_and_both_places()
    {
        Assert.Equal("config.toml:3:3: The key `a` is already defined at (1,1) with `a = 1` and cannot be redefined", Reject("a = 1\nb = 2\n  a = 3\n"));
    }

    [Fact]
    public void A_table_defined_twice_points_at_the_second_header()
    {
        string message = Reject("[x]\n[y]\n\n  [x]\n");

        Assert.StartsWith("config.toml:4:3: The key `x` is already defined at (1,1)", message);
    }

    [Fact]
    public void A_table_defined_twice_with_different_quotes_is_still_the_same_table()
    {
        string message = Reject("[plugins.'io.containerd.grpc.v1.cri']\nx = 1\n[plugins.\"io.containerd.grpc.v1.cri\"]\n");

        Assert.StartsWith("config.toml:3:1: The key `plugins.io.containerd.grpc.v1.cri` is already defined at (1,1)", message);
    }

    [Fact]
    public void A_dotted_key_into_a_header_table_is_rejected_where_it_is_written()
    {
        Assert.StartsWith("config.toml:5:3: The key `a.b` is already defined", Reject("[a.b]\nc = 1\n[a]\nx.y = 0\n  b.d = 2\n"));
    }

    [Fact]
    public void A_malformed_value_points_into_the_value()
    {
        Assert.StartsWith("config.toml:2:10: ", Reject("ok = 1\nport = 12ab\n"));
    }

    [Fact]
    public void An_unterminated_string_points_at_the_line_end()
    {
        Assert.Equal("config.toml:1:12: Invalid newline in a string", Reject("name = \"abc\nnext = 1\n"));
    }

    [Theory]
    [InlineData("s = \"é\" x\n")] // non-ASCII, one UTF-16 unit
    [InlineData("s = \"😀\" x\n")] // a surrogate pair is a single column
    public void Columns_count_unicode_scalar_values(string toml)
    {
        Assert.StartsWith("config.toml:1:9: ", Reject(toml));
    }

    [Fact]
    public void Line_numbers_follow_CRLF_and_multiline_strings()
    {
        Assert.StartsWith("config.toml:4:5: ", Reject("a = \"\"\"\r\none\r\ntwo\"\"\"\r\nb = = 1\r\n"));
    }

    [Fact]
    public void Invalid_UTF8_is_reported_at_the_first_bad_byte()
    {
        using var file = new TempBytes([.. Encoding.UTF8.GetBytes("a = 1\nb = \""), 0xFF, .. Encoding.UTF8.GetBytes("\"\n")]);

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(file.Path));

        Assert.Equal($"{file.Path}:2:6: invalid UTF-8 byte sequence (TOML files must be UTF-8 encoded)", e.Message);
    }

    [Fact]
    public void Text_that_ends_inside_an_escape_is_refused()
    {
        Assert.StartsWith("config.toml: not valid TOML", Reject("s = \"abc\\u"));
    }

    [Fact]
    public void Text_without_a_name_still_has_a_location()
    {
        Assert.StartsWith("<toml>:1:1: ", Reject("= 1\n", source: null));
    }

    [Fact]
    public void A_file_is_named_by_its_path()
    {
        using var file = TestFiles.Write("a = [1,,2]\n");

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(file.Path));

        Assert.StartsWith($"{file.Path}:1:8: ", e.Message);
        Assert.IsType<Tomlyn.TomlException>(e.InnerException); // with all of Tomlyn's diagnostics
    }

    private sealed class TempBytes : IDisposable
    {
        public TempBytes(byte[] bytes)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"hull-config-{Guid.NewGuid():N}.toml");
            File.WriteAllBytes(Path, bytes);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}
