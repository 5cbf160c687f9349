using Hull.E2E.Fixtures;

namespace Hull.E2E.Images;

/// <summary>Concurrent pulls share work: one download per blob, one unpack per layer.</summary>
public sealed class PullConcurrencyTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Two_concurrent_pulls_of_one_image_share_one_download()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync(proxy.Host);
        var manifest = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox);
        string image = pushed.Images.Busybox.Via(proxy.Host);
        // Slow enough (about a second for the layer) that the second pull arrives while the first is running.
        proxy.BytesPerSecond = (int)manifest.Layers[0].Size;
        proxy.Inject(RegistryFault.Slow);

        var ids = await Task.WhenAll(hulld.PullAsync(image), hulld.PullAsync(image));
        Assert.Equal(ids[0], ids[1]);
        Assert.Equal(1, proxy.GetCount(manifest.Layers[0].Digest));
        Assert.Equal(1, proxy.GetCount(manifest.Config.Digest));
        Assert.Equal(1, proxy.Requests.Count(r => r.IsManifest && r.Method == "GET"));
        Assert.Single(await hulld.ListImagesAsync());
        Assert.Single(hulld.SnapshotDirs());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Concurrent_pulls_of_two_images_sharing_a_layer_both_succeed_and_fetch_it_once()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync(proxy.Host);
        var busybox = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox);
        var multilayer = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Multilayer);
        string shared = busybox.Layers[0].Digest;
        Assert.Equal(shared, multilayer.Layers[0].Digest);
        proxy.BytesPerSecond = (int)busybox.Layers[0].Size;
        proxy.Inject(RegistryFault.Slow, ImageTestSupport.GetsOf(shared));

        var ids = await Task.WhenAll(
            hulld.PullAsync(pushed.Images.Busybox.Via(proxy.Host)),
            hulld.PullAsync(pushed.Images.Multilayer.Via(proxy.Host)));
        Assert.Equal([busybox.Config.Digest, multilayer.Config.Digest], ids);
        Assert.Equal(1, proxy.GetCount(shared));
        foreach (var l in multilayer.Layers.Skip(1)) Assert.Equal(1, proxy.GetCount(l.Digest));
        Assert.Equal(2, (await hulld.ListImagesAsync()).Count);
        // The busybox layer is one snapshot under both images.
        Assert.Equal(multilayer.Layers.Count, hulld.SnapshotDirs().Count);
        Assert.Empty(Directory.EnumerateFileSystemEntries(hulld.IngestDir()));
        Assert.Equal(
            new[] { busybox.Digest, busybox.Config.Digest, multilayer.Digest, multilayer.Config.Digest }.Concat(multilayer.Layers.Select(l => l.Digest)).Order(StringComparer.Ordinal),
            hulld.Blobs());
    }
}
