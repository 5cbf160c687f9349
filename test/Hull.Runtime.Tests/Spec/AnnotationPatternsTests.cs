using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public sealed class AnnotationPatternsTests
{
    [Theory]
    [InlineData("io.katacontainers.*", "io.katacontainers.config.hypervisor", true)]
    [InlineData("io.katacontainers.*", "io.kata", false)]
    [InlineData("example.com/*", "example.com/gpu", true)]
    [InlineData("*", "example.com/gpu", false)] // '*' does not cross '/', as Go's path.Match
    [InlineData("example.com/gp?", "example.com/gpu", true)]
    [InlineData("exact", "exact", true)]
    [InlineData("exact", "exactly", false)]
    public void Patterns_match_as_containerd_matches_them(string pattern, string key, bool match) =>
        Assert.Equal(match, AnnotationPatterns.Matches(pattern, key));

    [Fact]
    public async Task Pod_annotations_reach_the_container_spec_only_when_the_handler_lets_them_through()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with
        {
            PodAnnotations = new Dictionary<string, string> { ["io.katacontainers.config"] = "x", ["other"] = "y" },
        };
        var builder = new SpecBuilder(new SpecBuilderOptions(), SpecFixtures.Host());
        var none = await builder.BuildAsync(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox));
        Assert.False(none.Annotations!.ContainsKey("io.katacontainers.config"));

        var allowed = await builder.BuildAsync(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox,
            handler: SpecFixtures.Handler() with { PodAnnotations = ["io.katacontainers.*"] }));
        Assert.Equal("x", allowed.Annotations!["io.katacontainers.config"]);
        Assert.False(allowed.Annotations.ContainsKey("other"));
    }
}
