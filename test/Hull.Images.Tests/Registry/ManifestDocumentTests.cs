using System.Text;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Images.Oci;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class ManifestDocumentTests
{
    private const string D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Oci_index_with_platforms_is_parsed()
    {
        byte[] json = B($$$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{{D1}}}","size":10,
               "platform":{"architecture":"arm","os":"linux","variant":"v7","os.version":"1","os.features":["f"]},
               "annotations":{"a":"b"}},
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{{D2}}}","size":20}
            ],"annotations":{"org.opencontainers.image.ref.name":"x"}}
            """);
        string type = ManifestDocument.DetectMediaType(json, "application/vnd.oci.image.index.v1+json", "img");
        var index = Assert.IsType<ImageIndex>(ManifestDocument.Parse(json, type, "img"));

        Assert.Equal(2, index.Manifests.Count);
        Platform p = index.Manifests[0].Platform!;
        Assert.Equal(("linux", "arm", "v7", "1"), (p.Os, p.Architecture, p.Variant, p.OsVersion));
        Assert.Equal(["f"], p.OsFeatures!);
        Assert.Equal("b", index.Manifests[0].Annotations!["a"]);
        Assert.Null(index.Manifests[1].Platform);
        Assert.Equal("x", index.Annotations!["org.opencontainers.image.ref.name"]);
    }

    [Fact]
    public void Docker_schema2_manifest_is_parsed()
    {
        byte[] json = B($$$"""
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{{{D1}}}","size":5},
             "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{{{D2}}}","size":7}]}
            """);
        string type = ManifestDocument.DetectMediaType(json, "application/json", "img");
        Assert.Equal(MediaTypes.DockerManifest, type);
        var manifest = Assert.IsType<ImageManifest>(ManifestDocument.Parse(json, type, "img"));
        Assert.Equal(D1, manifest.Config.Digest);
        Assert.Equal(new Descriptor(MediaTypes.DockerLayerGzip, D2, 7), Assert.Single(manifest.Layers));
    }

    [Theory]
    [InlineData("application/vnd.docker.distribution.manifest.list.v2+json", "{\"schemaVersion\":2,\"manifests\":[]}", MediaTypes.DockerManifestList)]
    [InlineData("text/plain", "{\"schemaVersion\":2,\"manifests\":[]}", MediaTypes.OciIndex)]
    [InlineData(null, "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", MediaTypes.OciManifest)]
    [InlineData("application/vnd.oci.image.manifest.v1+json; charset=utf-8", "{\"schemaVersion\":2}", MediaTypes.OciManifest)]
    public void Media_type_comes_from_body_then_content_type_then_shape(string? contentType, string body, string expected)
    {
        Assert.Equal(expected, ManifestDocument.DetectMediaType(B(body), contentType, "img"));
    }

    [Theory]
    [InlineData("application/vnd.docker.distribution.manifest.v1+prettyjws", "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}")]
    [InlineData("application/json", "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}")]
    [InlineData("application/vnd.docker.distribution.manifest.v1+json", "{}")]
    public void Schema1_is_refused_with_the_deprecation_id(string contentType, string body)
    {
        var e = Assert.Throws<Schema1ImageException>(() => ManifestDocument.DetectMediaType(B(body), contentType, "docker.io/library/old:1"));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal("image \"docker.io/library/old:1\" uses Docker schema 1, which Hull does not pull", e.Message);
        Assert.Equal(DeprecationIds.PullSchema1Image, e.DeprecationId);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1]")]
    [InlineData("{\"schemaVersion\":2}")]
    public void Unreadable_manifests_are_FailedPrecondition_naming_the_image(string body)
    {
        var e = Assert.Throws<HullException>(() => ManifestDocument.DetectMediaType(B(body), "application/octet-stream", "img:1"));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("\"img:1\"", e.Message);
    }

    [Fact]
    public void Descriptors_with_bad_digests_are_rejected()
    {
        byte[] json = B("""{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:short","size":1}]}""");
        var e = Assert.Throws<HullException>(() => ManifestDocument.Parse(json, MediaTypes.OciIndex, "img"));
        Assert.Contains("sha256:short", e.Message);
    }
}
