using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

/// <summary>A blob of a test image: its descriptor and bytes.</summary>
public sealed record TestBlob(Descriptor Descriptor, byte[] Content)
{
    public static TestBlob Of(string mediaType, byte[] content) => new(new Descriptor(mediaType, Digests.Sha256(content), content.Length), content);
}

/// <summary>One platform's image: config, one gzip tar layer, and the OCI manifest over them.</summary>
public sealed record TestPlatformImage(Platform Platform, TestBlob Config, TestBlob Layer, TestBlob Manifest);

/// <summary>
/// A small multi-platform image built in memory: one shared gzip tar layer (large enough to test ranged
/// reads), one config and manifest per platform, and an OCI index over them.
/// </summary>
public sealed class TestImage
{
    private TestImage(TestBlob layer, IReadOnlyList<TestPlatformImage> platforms, TestBlob index)
    {
        Layer = layer;
        Platforms = platforms;
        Index = index;
    }

    public TestBlob Layer { get; }

    public IReadOnlyList<TestPlatformImage> Platforms { get; }

    public TestBlob Index { get; }

    public static TestImage Create(params Platform[] platforms)
    {
        if (platforms.Length == 0) platforms = [new Platform("linux", "amd64"), new Platform("linux", "arm64", "v8")];
        byte[] tar = LayerTar(out byte[] gzip);
        TestBlob layer = TestBlob.Of(MediaTypes.OciLayerGzip, gzip);
        string diffId = Digests.Sha256(tar);

        var images = new List<TestPlatformImage>();
        foreach (Platform platform in platforms)
        {
            byte[] config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
            {
                ["architecture"] = platform.Architecture,
                ["os"] = platform.Os,
                ["variant"] = platform.Variant,
                ["config"] = new Dictionary<string, object> { ["Cmd"] = new[] { "/hello" } },
                ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = new[] { diffId } },
            });
            TestBlob configBlob = TestBlob.Of(MediaTypes.OciConfig, config);
            byte[] manifest = Encoding.UTF8.GetBytes($$"""
                {"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{DescriptorJson(configBlob.Descriptor)}},"layers":[{{DescriptorJson(layer.Descriptor)}}]}
                """);
            images.Add(new TestPlatformImage(platform, configBlob, layer, TestBlob.Of(MediaTypes.OciManifest, manifest)));
        }

        string entries = string.Join(",", images.Select(i =>
            DescriptorJson(i.Manifest.Descriptor, $"\"platform\":{{\"architecture\":\"{i.Platform.Architecture}\",\"os\":\"{i.Platform.Os}\"" +
                (i.Platform.Variant is null ? "" : $",\"variant\":\"{i.Platform.Variant}\"") + "}")));
        byte[] index = Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[{{entries}}]}""");
        return new TestImage(layer, images, TestBlob.Of(MediaTypes.OciIndex, index));
    }

    public TestPlatformImage For(string architecture) => Platforms.Single(p => p.Platform.Architecture == architecture);

    /// <summary>Pushes every blob and manifest, and the index under <paramref name="tag"/>.</summary>
    public async Task PushAsync(RegistryRepository repository, string tag)
    {
        await repository.PushBlobAsync(Layer.Descriptor, new MemoryStream(Layer.Content));
        foreach (TestPlatformImage image in Platforms)
        {
            await repository.PushBlobAsync(image.Config.Descriptor, new MemoryStream(image.Config.Content));
            await repository.PushManifestAsync(image.Manifest.Descriptor.Digest, image.Manifest.Content, MediaTypes.OciManifest);
        }
        await repository.PushManifestAsync(tag, Index.Content, MediaTypes.OciIndex);
    }

    private static string DescriptorJson(Descriptor d, string? extra = null) =>
        $"{{\"mediaType\":\"{d.MediaType}\",\"digest\":\"{d.Digest}\",\"size\":{d.Size}{(extra is null ? "" : "," + extra)}}}";

    // A tar with a file of incompressible bytes, so the gzip layer is a few hundred KiB.
    private static byte[] LayerTar(out byte[] gzip)
    {
        byte[] payload = new byte[300 * 1024];
        new Random(42).NextBytes(payload);
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "hello") { DataStream = new MemoryStream(payload) });
        }
        using var compressed = new MemoryStream();
        using (var gz = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(tar.ToArray());
        }
        gzip = compressed.ToArray();
        return tar.ToArray();
    }
}
