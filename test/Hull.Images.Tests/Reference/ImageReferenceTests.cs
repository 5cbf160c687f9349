using Hull.Core;
using Hull.Images.Reference;

namespace Hull.Images.Tests.Reference;

public sealed class ImageReferenceTests
{
    private const string Hex = "6d8a38e4d4c8e4f7d0c1f3c8b8f2c4d2a1e5b6c7d8e9f0a1b2c3d4e5f6a7b8c9";

    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest")]
    [InlineData("busybox:1.36", "docker.io/library/busybox:1.36")]
    [InlineData("ubuntu:22.04", "docker.io/library/ubuntu:22.04")]
    [InlineData("library/busybox", "docker.io/library/busybox:latest")]
    [InlineData("docker.io/busybox", "docker.io/library/busybox:latest")]
    [InlineData("docker.io/library/busybox:latest", "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/busybox", "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/foo/bar", "docker.io/foo/bar:latest")]
    [InlineData("foo/bar", "docker.io/foo/bar:latest")]
    [InlineData("foo/bar/baz:tag", "docker.io/foo/bar/baz:tag")]
    [InlineData("foo-bar/a__b.c:x_Y.1-2", "docker.io/foo-bar/a__b.c:x_Y.1-2")]
    [InlineData("localhost/foo", "localhost/foo:latest")]
    [InlineData("localhost", "docker.io/library/localhost:latest")]
    [InlineData("localhost:5000/x", "localhost:5000/x:latest")]
    [InlineData("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1")]
    [InlineData("[::1]:5000/foo", "[::1]:5000/foo:latest")]
    [InlineData("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10")]
    [InlineData("gcr.io/k8s-staging/test-image:v1.0.0-rc.1", "gcr.io/k8s-staging/test-image:v1.0.0-rc.1")]
    [InlineData("example:5000/ns/img", "example:5000/ns/img:latest")]
    [InlineData("Foo/bar", "Foo/bar:latest")] // an uppercase first element cannot be a namespace, so it is a host
    [InlineData("example.com/ns/img@sha256:" + Hex, "example.com/ns/img@sha256:" + Hex)]
    [InlineData("busybox@sha256:" + Hex, "docker.io/library/busybox@sha256:" + Hex)]
    [InlineData("busybox:1.36@sha256:" + Hex, "docker.io/library/busybox@sha256:" + Hex)] // ParseDockerRef keeps only the digest
    public void ParseDockerRef_normalises_like_containerd(string input, string expected)
    {
        Assert.Equal(expected, ImageReference.ParseDockerRef(input).ToString());
    }

    [Theory]
    [InlineData("", "at least one component")]
    [InlineData("Busybox", "must be lowercase")]
    [InlineData("docker.io/Foo/bar", "must be lowercase")]
    [InlineData("foo/Bar", "must be lowercase")]
    [InlineData("busybox:", "invalid reference format")]
    [InlineData(":tag", "invalid reference format")]
    [InlineData("foo//bar", "invalid reference format")]
    [InlineData("docker.io/-foo", "invalid reference format")]
    [InlineData("foo/bar:tag:tag2", "invalid reference format")]
    [InlineData("foo bar", "invalid reference format")]
    [InlineData("https://example.com/foo", "invalid reference format")]
    [InlineData("foo/bar:-tag", "invalid reference format")]
    [InlineData("busybox@sha256:abc", "invalid reference format")]
    [InlineData("busybox@sha256:" + "6D8A38E4D4C8E4F7D0C1F3C8B8F2C4D2A1E5B6C7D8E9F0A1B2C3D4E5F6A7B8C9", "invalid digest")]
    [InlineData("busybox@md5:0123456789abcdef0123456789abcdef", "invalid digest")]
    [InlineData("busybox@sha256:" + Hex + "00", "invalid digest")]
    [InlineData(Hex, "64-byte hexadecimal")]
    public void Invalid_references_are_InvalidArgument_naming_the_reference(string input, string reason)
    {
        var e = Assert.Throws<HullException>(() => ImageReference.ParseDockerRef(input));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"\"{input}\"", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Tag_longer_than_128_characters_is_rejected()
    {
        Assert.Throws<HullException>(() => ImageReference.ParseDockerRef("foo:" + new string('a', 129)));
        Assert.Equal(new string('a', 128), ImageReference.ParseDockerRef("foo:" + new string('a', 128)).Tag);
    }

    [Fact]
    public void Name_longer_than_255_characters_is_rejected()
    {
        string longName = "example.com/" + string.Join('/', Enumerable.Repeat("abcdefghij", 25));
        var e = Assert.Throws<HullException>(() => ImageReference.ParseDockerRef(longName));
        Assert.Contains("255", e.Message);
    }

    [Fact]
    public void Parts_are_exposed_separately()
    {
        ImageReference r = ImageReference.ParseDockerRef("localhost:5000/team/app:v2");
        Assert.Equal("localhost:5000", r.Domain);
        Assert.Equal("team/app", r.Path);
        Assert.Equal("v2", r.Tag);
        Assert.Null(r.Digest);
        Assert.Equal("localhost:5000/team/app", r.Name);
        Assert.Equal("v2", r.ManifestReference);
    }

    [Fact]
    public void ParseNormalized_keeps_both_tag_and_digest_and_does_not_add_latest()
    {
        ImageReference both = ImageReference.ParseNormalized("busybox:1.36@sha256:" + Hex);
        Assert.Equal("1.36", both.Tag);
        Assert.Equal("sha256:" + Hex, both.Digest);
        Assert.Equal("sha256:" + Hex, both.ManifestReference); // the digest wins when asking a registry
        Assert.Null(ImageReference.ParseNormalized("busybox").Tag);
    }

    [Fact]
    public void Parse_does_not_normalise()
    {
        ImageReference r = ImageReference.Parse("busybox");
        Assert.Equal("", r.Domain);
        Assert.Equal("busybox", r.Name);
    }

    [Fact]
    public void Equal_references_are_equal()
    {
        Assert.Equal(ImageReference.ParseDockerRef("busybox"), ImageReference.ParseDockerRef("docker.io/library/busybox:latest"));
        Assert.NotEqual(ImageReference.ParseDockerRef("busybox:1"), ImageReference.ParseDockerRef("busybox:2"));
    }

    [Fact]
    public void WithTag_and_WithDigest_replace_the_object()
    {
        ImageReference r = ImageReference.ParseDockerRef("busybox:1");
        Assert.Equal("docker.io/library/busybox:2", r.WithTag("2").ToString());
        Assert.Equal("docker.io/library/busybox@sha256:" + Hex, r.WithDigest("sha256:" + Hex).ToString());
        Assert.Throws<HullException>(() => r.WithTag("bad tag"));
        Assert.Throws<HullException>(() => r.WithDigest("sha256:nothex"));
    }

    [Fact]
    public void TryParseDockerRef_reports_failure_without_throwing()
    {
        Assert.True(ImageReference.TryParseDockerRef("busybox", out ImageReference? ok));
        Assert.Equal("docker.io/library/busybox:latest", ok.ToString());
        Assert.False(ImageReference.TryParseDockerRef("UPPER", out ImageReference? bad));
        Assert.Null(bad);
    }
}
