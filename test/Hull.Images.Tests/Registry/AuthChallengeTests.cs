using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class AuthChallengeTests
{
    [Fact]
    public void Docker_hub_bearer_challenge_is_parsed()
    {
        var challenge = Assert.Single(AuthChallenge.Parse(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\""));
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.docker.io/token", challenge.Realm);
        Assert.Equal("registry.docker.io", challenge.Service);
        Assert.Equal("repository:library/busybox:pull", challenge.Scope);
        Assert.Null(challenge.Error);
    }

    [Fact]
    public void Basic_challenge_is_parsed()
    {
        var challenge = Assert.Single(AuthChallenge.Parse("Basic realm=\"hull-test\""));
        Assert.True(challenge.IsBasic);
        Assert.Equal("hull-test", challenge.Realm);
    }

    [Fact]
    public void Several_challenges_in_one_header_are_separated()
    {
        var challenges = AuthChallenge.Parse("Basic realm=\"a\", Bearer realm=\"https://t/token\", service=\"s\"");
        Assert.Equal(2, challenges.Count);
        Assert.True(challenges[0].IsBasic);
        Assert.Equal("a", challenges[0].Realm);
        Assert.True(challenges[1].IsBearer);
        Assert.Equal("https://t/token", challenges[1].Realm);
        Assert.Equal("s", challenges[1].Service);
    }

    [Fact]
    public void Scheme_and_parameter_names_are_case_insensitive_and_spaces_are_tolerated()
    {
        var challenge = Assert.Single(AuthChallenge.Parse("bearer   REALM = \"https://x/token\" ,  Service=reg"));
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://x/token", challenge.Realm);
        Assert.Equal("reg", challenge.Service);
    }

    [Fact]
    public void Quoted_values_keep_commas_and_unescape_backslashes()
    {
        var challenge = Assert.Single(AuthChallenge.Parse(
            "Bearer realm=\"https://x/token\",scope=\"repository:a:pull,push repository:b:pull\",error=\"insufficient_scope\",note=\"say \\\"hi\\\"\""));
        Assert.Equal("repository:a:pull,push repository:b:pull", challenge.Scope);
        Assert.Equal("insufficient_scope", challenge.Error);
        Assert.Equal("say \"hi\"", challenge.Get("note"));
    }

    [Fact]
    public void Values_from_several_header_lines_are_combined()
    {
        var challenges = AuthChallenge.Parse(["Basic realm=\"r\"", "Bearer realm=\"t\""]);
        Assert.Equal(["Basic", "Bearer"], challenges.Select(c => c.Scheme));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ,  ")]
    public void Empty_header_has_no_challenges(string header)
    {
        Assert.Empty(AuthChallenge.Parse(header));
    }

    [Fact]
    public void Unterminated_quote_does_not_throw()
    {
        var challenge = Assert.Single(AuthChallenge.Parse("Bearer realm=\"https://x"));
        Assert.Null(challenge.Realm);
    }
}
