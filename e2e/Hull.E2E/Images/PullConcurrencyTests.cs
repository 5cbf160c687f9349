using Hull.E2E.Fixtures;
using Grpc.Core;

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

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_failing_pull_cleans_up_only_its_own_content_not_that_of_a_concurrent_pull_sharing_its_base_layer()
    {
        // Two proxies in front of one registry, one fault each: busybox's layer (which multilayer shares) comes
        // slowly through one, multilayer's top layer comes corrupted through the other.
        await using var slow = FaultyRegistryProxy.Start(pushed.Registry);
        await using var corrupting = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync([slow.Host, corrupting.Host]);
        var busybox = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox);
        var multilayer = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Multilayer);
        string shared = busybox.Layers[0].Digest, top = multilayer.Layers[^1].Digest;
        slow.BytesPerSecond = (int)(busybox.Layers[0].Size / 2);
        slow.Inject(RegistryFault.Slow, ImageTestSupport.GetsOf(shared));
        corrupting.Inject(RegistryFault.Corrupt, ImageTestSupport.GetsOf(top));

        var busyboxPull = hulld.PullAsync(pushed.Images.Busybox.Via(slow.Host));
        await WaitUntilAsync(() => slow.GetCount(shared) == 1);
        string multilayerImage = pushed.Images.Multilayer.Via(corrupting.Host);
        var error = await hulld.PullFailsAsync(multilayerImage);
        error.AssertCode(StatusCode.FailedPrecondition);
        Assert.Contains(top, error.Status.Detail);
        Assert.False(busyboxPull.IsCompleted, "busybox finished before multilayer failed: nothing was shared at the time of the cleanup");

        string id = await busyboxPull;
        Assert.Equal(busybox.Config.Digest, id);
        var image = Assert.Single(await hulld.ListImagesAsync());
        Assert.Equal(id, image.Id);
        // Only busybox's blobs and snapshot are left: multilayer's manifest, config and layers went with its failure.
        Assert.Equal(new[] { busybox.Digest, busybox.Config.Digest, shared }.Order(StringComparer.Ordinal), hulld.Blobs());
        var snapshot = Assert.Single(hulld.SnapshotDirs());
        Assert.True(File.Exists(Path.Combine(snapshot, "fs", "bin", "busybox")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(hulld.IngestDir()));
        Assert.Equal(0, corrupting.GetCount(shared) + slow.GetCount(top)); // the shared layer came once, through busybox's pull
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the proxy");
            await Task.Delay(20);
        }
    }
}
