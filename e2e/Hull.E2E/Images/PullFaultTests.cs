using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>
/// Pulls through a <see cref="FaultyRegistryProxy"/>: transient failures are retried or resumed, real
/// corruption fails naming the image and the layer, and a failed pull leaves nothing in the store.
/// </summary>
public sealed class PullFaultTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private async Task<(FaultyRegistryProxy Proxy, HulldProcess Hulld, string Image, BlobRef Layer)> BusyboxViaProxyAsync()
    {
        var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        var layer = Assert.Single((await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox)).Layers);
        try
        {
            return (proxy, await ImageTestSupport.StartHulldAsync(proxy.Host), pushed.Images.Busybox.Via(proxy.Host), layer);
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Transient_503s_on_a_layer_are_retried_and_the_pull_succeeds()
    {
        var (proxy, hulld, image, layer) = await BusyboxViaProxyAsync();
        await using var _ = proxy;
        await using var __ = hulld;
        proxy.Inject(RegistryFault.ServerError, ImageTestSupport.GetsOf(layer.Digest), times: 2);

        await hulld.PullAsync(image);
        Assert.Equal(2, proxy.FaultsInjected);
        Assert.Equal(3, proxy.GetCount(layer.Digest));
        Assert.Contains("registry request failed (503 Injected Fault); retry 2", hulld.Log); // the operator can see why a pull was slow
        Assert.Single(hulld.SnapshotDirs());
        Assert.Empty(Directory.EnumerateFileSystemEntries(hulld.IngestDir()));
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_corrupted_layer_fails_the_pull_naming_image_and_layer_and_leaves_nothing_behind()
    {
        var (proxy, hulld, image, layer) = await BusyboxViaProxyAsync();
        await using var _ = proxy;
        await using var __ = hulld;
        proxy.Inject(RegistryFault.Corrupt, ImageTestSupport.GetsOf(layer.Digest));

        var error = await hulld.PullFailsAsync(image);
        error.AssertCode(StatusCode.FailedPrecondition);
        Assert.Contains($"\"{image}\"", error.Status.Detail);
        Assert.Contains(layer.Digest, error.Status.Detail);
        Assert.Contains("digest mismatch", error.Status.Detail);
        // Corruption is not transient: one download, no retries of the same bad bytes.
        Assert.Equal(1, proxy.GetCount(layer.Digest));
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_layer_body_cut_short_once_is_resumed_and_the_pull_succeeds()
    {
        var (proxy, hulld, image, layer) = await BusyboxViaProxyAsync();
        await using var _ = proxy;
        await using var __ = hulld;
        proxy.Inject(RegistryFault.Truncate, ImageTestSupport.GetsOf(layer.Digest), times: 1);
        int ranged = pushed.Registry.RangedGets(pushed.Images.Busybox.RepositoryPath, layer.Digest);

        string id = await hulld.PullAsync(image);
        Assert.Equal(id, (await hulld.StatusAsync(image))?.Id);
        // The first GET was cut at half; the second asked for the rest with a Range request.
        Assert.Equal(2, proxy.GetCount(layer.Digest));
        await pushed.Registry.AssertRangedGetsAsync(pushed.Images.Busybox.RepositoryPath, layer.Digest, ranged + 1);
        Assert.Contains(layer.Digest, hulld.Blobs());
        Assert.Single(hulld.SnapshotDirs());
        Assert.Empty(Directory.EnumerateFileSystemEntries(hulld.IngestDir()));
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_layer_that_is_always_cut_short_fails_cleanly_after_the_resumes_run_out()
    {
        var (proxy, hulld, image, layer) = await BusyboxViaProxyAsync();
        await using var _ = proxy;
        await using var __ = hulld;
        proxy.Inject(RegistryFault.Truncate, ImageTestSupport.GetsOf(layer.Digest));

        var error = await hulld.PullFailsAsync(image);
        error.AssertCode(StatusCode.Unavailable);
        Assert.Contains($"\"{image}\"", error.Status.Detail);
        Assert.Contains(layer.Digest, error.Status.Detail);
        Assert.True(proxy.GetCount(layer.Digest) >= 2, $"{proxy.GetCount(layer.Digest)} GETs of the layer: no resume was tried");
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_connection_reset_on_a_layer_is_retried_and_the_pull_succeeds()
    {
        var (proxy, hulld, image, layer) = await BusyboxViaProxyAsync();
        await using var _ = proxy;
        await using var __ = hulld;
        proxy.Inject(RegistryFault.Reset, ImageTestSupport.GetsOf(layer.Digest), times: 1);

        await hulld.PullAsync(image);
        Assert.Equal(1, proxy.FaultsInjected);
        Assert.Equal(2, proxy.GetCount(layer.Digest));
        Assert.Single(hulld.SnapshotDirs());
    }
}
