using Hull.E2E.Fixtures;

namespace Hull.E2E.Images;

/// <summary>RemoveImage removes an image under all its names and only what no other image uses.</summary>
public sealed class RemoveImageTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Removing_by_tag_removes_the_digest_name_too()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var busybox = pushed.Images.Busybox;
        string id = await hulld.PullAsync(busybox.Reference);
        Assert.Equal(id, (await hulld.StatusAsync(busybox.DigestReference))?.Id);

        await hulld.RemoveAsync(busybox.Reference);
        Assert.Null(await hulld.StatusAsync(busybox.Reference));
        Assert.Null(await hulld.StatusAsync(busybox.DigestReference));
        Assert.Null(await hulld.StatusAsync(id));
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Removing_by_id_removes_every_name_of_the_image()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var busybox = pushed.Images.Busybox;
        // zstd has busybox's config, so it is the same image (one ID) under more names.
        string id = await hulld.PullAsync(busybox.Reference);
        Assert.Equal(id, await hulld.PullAsync(pushed.Images.Zstd.Reference));
        var image = Assert.Single(await hulld.ListImagesAsync());
        Assert.Equal([busybox.Reference, pushed.Images.Zstd.Reference], image.RepoTags);
        Assert.Equal(2, image.RepoDigests.Count);

        await hulld.RemoveAsync(id);
        foreach (var name in new[] { busybox.Reference, busybox.DigestReference, pushed.Images.Zstd.Reference, pushed.Images.Zstd.DigestReference })
            Assert.Null(await hulld.StatusAsync(name));
        await hulld.AssertStoreIsEmptyAsync();

        // The bare hex form of the ID works as well, as the kubelet may send it.
        await hulld.PullAsync(busybox.Reference);
        await hulld.RemoveAsync(id["sha256:".Length..]);
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Removing_an_image_keeps_the_layers_another_image_shares()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync(proxy.Host);
        var busybox = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox);
        string busyboxImage = pushed.Images.Busybox.Via(proxy.Host), multilayerImage = pushed.Images.Multilayer.Via(proxy.Host);
        string id = await hulld.PullAsync(busyboxImage);
        await hulld.PullAsync(multilayerImage);
        var busyboxSnapshot = hulld.SnapshotDirs()[0];
        Assert.Equal(6, hulld.SnapshotDirs().Count);

        await hulld.RemoveAsync(multilayerImage);
        Assert.Null(await hulld.StatusAsync(multilayerImage));
        Assert.Equal(id, (await hulld.StatusAsync(busyboxImage))?.Id);
        Assert.Equal([busyboxSnapshot], hulld.SnapshotDirs());
        Assert.True(File.Exists(Path.Combine(busyboxSnapshot, "fs", "bin", "busybox")));
        Assert.Equal(new[] { busybox.Digest, busybox.Config.Digest, busybox.Layers[0].Digest }.Order(StringComparer.Ordinal), hulld.Blobs());
        var info = await hulld.VerboseInfoAsync(busyboxImage);
        Assert.Equal("busybox", info.GetProperty("imageSpec").GetProperty("config").GetProperty("Labels").GetProperty("org.hull.test.image").GetString());

        // Pulling busybox again only resolves the tag: every blob and the snapshot are still there.
        int blobGets = proxy.Requests.Count(r => r.IsBlob);
        Assert.Equal(id, await hulld.PullAsync(busyboxImage));
        Assert.Equal(blobGets, proxy.Requests.Count(r => r.IsBlob));
        Assert.Equal([busyboxSnapshot], hulld.SnapshotDirs());
    }
}
