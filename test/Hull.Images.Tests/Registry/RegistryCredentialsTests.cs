using System.Text;
using Hull.Core;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class RegistryCredentialsTests
{
    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    [Fact]
    public void Username_and_password_come_first()
    {
        var c = RegistryCredentials.FromAuthConfig("u", "p", B64("other:x"), null, "refresh", "reg")!;
        Assert.Equal(("u", "p", (string?)null, (string?)null), (c.Username, c.Password, c.IdentityToken, c.RegistryToken));
    }

    [Fact]
    public void Identity_token_beats_auth()
    {
        var c = RegistryCredentials.FromAuthConfig(null, null, B64("a:b"), null, "refresh", null)!;
        Assert.Equal("refresh", c.IdentityToken);
        Assert.Null(c.Username);
    }

    [Fact]
    public void Auth_is_decoded_and_trailing_nuls_trimmed()
    {
        var c = RegistryCredentials.FromAuthConfig("", "", B64("user:pa:ss\0\0"), "", null, null)!;
        Assert.Equal(("user", "pa:ss"), (c.Username, c.Password));
    }

    [Fact]
    public void Registry_token_is_used_when_nothing_else_is_given()
    {
        var c = RegistryCredentials.FromAuthConfig(null, null, null, null, null, "bearer-token")!;
        Assert.Equal("bearer-token", c.RegistryToken);
    }

    [Fact]
    public void Empty_auth_config_means_anonymous()
    {
        Assert.Null(RegistryCredentials.FromAuthConfig("", "", "", "", "", ""));
    }

    [Theory]
    [InlineData("!!!notbase64")]
    [InlineData("dXNlcm5vY29sb24=")] // "usernocolon"
    public void Malformed_auth_is_InvalidArgument_without_leaking_it(string auth)
    {
        var e = Assert.Throws<HullException>(() => RegistryCredentials.FromAuthConfig(null, null, auth, null, null, null));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.DoesNotContain(auth, e.Message);
    }

    [Theory]
    [InlineData(null, "registry.example.com", "registry.example.com", true)]
    [InlineData("registry.example.com", "registry.example.com", "registry.example.com", true)]
    [InlineData("https://registry.example.com", "registry.example.com", "registry.example.com", true)]
    [InlineData("https://index.docker.io/v1/", "registry-1.docker.io", "docker.io", true)]
    [InlineData("docker.io", "registry-1.docker.io", "docker.io", true)]
    [InlineData("registry.example.com", "mirror.example.com", "registry.example.com", true)] // namespace matches
    [InlineData("other.example.com", "registry.example.com", "registry.example.com", false)]
    public void Server_address_limits_where_credentials_go(string? server, string host, string domain, bool applies)
    {
        var c = new RegistryCredentials("u", "p") { ServerAddress = server };
        Assert.Equal(applies, c.AppliesTo(host, domain));
    }

    [Fact]
    public void ToString_masks_secrets()
    {
        string s = new RegistryCredentials("u", "topsecret", "refreshsecret", "tokensecret").ToString();
        Assert.DoesNotContain("secret", s);
        Assert.Contains("u", s);
    }
}
