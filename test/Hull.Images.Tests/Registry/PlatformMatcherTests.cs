using Hull.Images.Oci;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class PlatformMatcherTests
{
    private static Platform P(string spec)
    {
        string[] parts = spec.Split('/');
        return new Platform(parts[0], parts[1], parts.Length > 2 ? parts[2] : null);
    }

    private static Descriptor Entry(string platform, char id) =>
        new(MediaTypes.OciManifest, "sha256:" + new string(id, 64), 100) { Platform = P(platform) };

    [Theory]
    [InlineData("linux/amd64", "linux/amd64", true)]
    [InlineData("linux/amd64", "linux/x86_64", true)]
    [InlineData("linux/amd64", "LINUX/AMD64/v1", true)]
    [InlineData("linux/amd64", "linux/386", true)]
    [InlineData("linux/amd64", "linux/amd64/v2", false)] // the node did not say it can run v2
    [InlineData("linux/amd64/v3", "linux/amd64/v2", true)]
    [InlineData("linux/amd64/v3", "linux/amd64", true)]
    [InlineData("linux/amd64/v3", "linux/amd64/v4", false)]
    [InlineData("linux/amd64", "windows/amd64", false)]
    [InlineData("linux/amd64", "linux/arm64", false)]
    [InlineData("linux/arm64", "linux/arm64/v8", true)]
    [InlineData("linux/arm64", "linux/aarch64", true)]
    [InlineData("linux/arm64", "linux/arm/v7", true)]
    [InlineData("linux/arm64", "linux/arm/v8", true)]
    [InlineData("linux/arm64", "linux/arm/v5", true)]
    [InlineData("linux/arm64", "linux/arm64/v9", false)]
    [InlineData("linux/arm64/v9.2", "linux/arm64/v8.6", true)]
    [InlineData("linux/arm64/v9.2", "linux/arm64/v8.7", true)]
    [InlineData("linux/arm64/v9.2", "linux/arm64/v8.8", false)]
    [InlineData("linux/arm/v7", "linux/arm", true)] // arm without variant is v7
    [InlineData("linux/arm/v7", "linux/armhf", true)]
    [InlineData("linux/arm/v7", "linux/arm/v6", true)]
    [InlineData("linux/arm/v7", "linux/armel", true)]
    [InlineData("linux/arm/v7", "linux/arm/v8", false)]
    [InlineData("linux/arm/v6", "linux/arm/v7", false)]
    [InlineData("linux/arm/v6", "linux/arm/v5", true)]
    public void Matches_like_containerd_platforms_Only(string node, string candidate, bool expected)
    {
        Assert.Equal(expected, PlatformMatcher.Only(P(node)).Matches(P(candidate)));
    }

    [Fact]
    public void Exact_platform_is_preferred_over_compatible_ones()
    {
        var matcher = PlatformMatcher.Only(P("linux/arm64"));
        Descriptor arm7 = Entry("linux/arm/v7", 'a'), arm64 = Entry("linux/arm64/v8", 'b'), amd64 = Entry("linux/amd64", 'c');

        Assert.Equal(arm64, matcher.Select([arm7, amd64, arm64]));
        Assert.Equal([arm64, arm7], matcher.Candidates([arm7, amd64, arm64]));
    }

    [Fact]
    public void Higher_amd64_levels_are_preferred_in_order()
    {
        var matcher = PlatformMatcher.Only(P("linux/amd64/v3"));
        Descriptor v1 = Entry("linux/amd64", '1'), v2 = Entry("linux/amd64/v2", '2'), v4 = Entry("linux/amd64/v4", '4'), i386 = Entry("linux/386", '3');
        Assert.Equal([v2, v1, i386], matcher.Candidates([i386, v1, v4, v2]));
    }

    [Fact]
    public void Equal_ranks_keep_index_order_and_entries_without_platform_go_last()
    {
        var matcher = PlatformMatcher.Only(P("linux/amd64"));
        Descriptor first = Entry("linux/amd64", 'a'), second = Entry("linux/amd64", 'b');
        Descriptor unknown = new(MediaTypes.OciManifest, "sha256:" + new string('c', 64), 1);
        Assert.Equal([first, second, unknown], matcher.Candidates([unknown, first, second]));
        Assert.Equal(first, matcher.Select([unknown, first, second]));
    }

    [Fact]
    public void Attestation_manifests_and_other_platforms_are_not_selected()
    {
        var matcher = PlatformMatcher.Only(P("linux/amd64"));
        Descriptor attestation = Entry("unknown/unknown", 'a');
        Assert.Null(matcher.Select([attestation, Entry("linux/arm64", 'b'), Entry("windows/amd64", 'c')]));
    }

    [Fact]
    public void Os_features_of_an_entry_must_be_a_subset_of_the_nodes()
    {
        var node = new Platform("linux", "amd64") { OsFeatures = ["a", "b"] };
        Assert.True(PlatformMatcher.Only(node).Matches(new Platform("linux", "amd64") { OsFeatures = ["b"] }));
        Assert.False(PlatformMatcher.Only(node).Matches(new Platform("linux", "amd64") { OsFeatures = ["c"] }));
        Assert.False(PlatformMatcher.Only(P("linux/amd64")).Matches(new Platform("linux", "amd64") { OsFeatures = ["a"] }));
    }

    [Theory]
    [InlineData("linux/x86_64/v1", "linux/amd64")]
    [InlineData("Linux/AARCH64/8", "linux/arm64")]
    [InlineData("linux/armhf", "linux/arm/v7")]
    [InlineData("linux/arm/7", "linux/arm/v7")]
    [InlineData("linux/i386/foo", "linux/386")]
    [InlineData("macos/arm64", "darwin/arm64")]
    public void Normalize_uses_canonical_names(string input, string expected)
    {
        Assert.Equal(expected, PlatformMatcher.Normalize(P(input)).ToString());
    }

    [Fact]
    public void Node_platform_is_linux_on_the_process_architecture()
    {
        Platform node = PlatformMatcher.NodePlatform();
        Assert.Equal("linux", node.Os);
        Assert.True(PlatformMatcher.Default.Matches(node));
        if (System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.Equal("amd64", node.Architecture);
            Assert.True(PlatformMatcher.Default.Matches(P("linux/amd64")));
        }
    }
}
