using System.Text;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class RegistryErrorTests
{
    private static IReadOnlyList<RegistryError> Parse(string json) => RegistryError.Parse(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Distribution_error_body_is_parsed()
    {
        var error = Assert.Single(Parse(
            """{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"missing"}}]}"""));
        Assert.Equal("MANIFEST_UNKNOWN", error.Code);
        Assert.Equal("manifest unknown", error.Message);
        Assert.Equal("""{"Tag":"missing"}""", error.Detail);
        Assert.Equal("MANIFEST_UNKNOWN: manifest unknown", error.ToString());
    }

    [Fact]
    public void Several_errors_keep_their_order_and_string_details()
    {
        var errors = Parse("""{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":"x"},{"code":"DENIED","message":"no"}]}""");
        Assert.Equal(["UNAUTHORIZED", "DENIED"], errors.Select(e => e.Code));
        Assert.Equal("x", errors[0].Detail);
        Assert.Null(errors[1].Detail);
    }

    [Fact]
    public void Missing_code_or_message_gets_defaults()
    {
        var error = Assert.Single(Parse("""{"errors":[{}]}"""));
        Assert.Equal("UNKNOWN", error.Code);
        Assert.Equal("", error.Message);
        Assert.Equal("UNKNOWN", error.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("{\"message\":\"not the distribution format\"}")]
    [InlineData("{\"errors\":\"nope\"}")]
    [InlineData("[1,2]")]
    [InlineData("{\"errors\":[")]
    public void Bodies_in_other_formats_give_no_errors(string body)
    {
        Assert.Empty(Parse(body));
    }
}
