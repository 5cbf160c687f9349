using System.Diagnostics;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>image_pull_progress_timeout fails a pull that stalls, not one that is merely slow.</summary>
public sealed class PullProgressTimeoutTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private const string TwoSeconds = "  image_pull_progress_timeout = '2s'";

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_hanging_registry_fails_with_DeadlineExceeded_after_the_progress_timeout_and_leaves_nothing_behind()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync(proxy.Host, TwoSeconds);
        var layer = Assert.Single((await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox)).Layers);
        string image = pushed.Images.Busybox.Via(proxy.Host);
        proxy.Inject(RegistryFault.Hang, ImageTestSupport.GetsOf(layer.Digest));

        var watch = Stopwatch.StartNew();
        var error = await hulld.PullFailsAsync(image, timeout: TimeSpan.FromSeconds(30));
        watch.Stop();
        error.AssertCode(StatusCode.DeadlineExceeded);
        Assert.Contains($"\"{image}\"", error.Status.Detail);
        Assert.Contains("no progress", error.Status.Detail);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(20)); // generous: CI machines are loaded
        Assert.Contains(proxy.Requests, r => r.Fault == RegistryFault.Hang);
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_slow_but_steady_download_outlasts_the_progress_timeout_and_succeeds()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        await using var hulld = await ImageTestSupport.StartHulldAsync(proxy.Host, TwoSeconds);
        var layer = Assert.Single((await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox)).Layers);
        string image = pushed.Images.Busybox.Via(proxy.Host);
        // A chunk every 100 ms, and the whole layer takes about twice the progress timeout.
        proxy.BytesPerSecond = (int)(layer.Size / 4);
        proxy.Inject(RegistryFault.Slow, ImageTestSupport.GetsOf(layer.Digest));

        var watch = Stopwatch.StartNew();
        string id = await hulld.PullAsync(image, timeout: TimeSpan.FromSeconds(30));
        watch.Stop();
        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(3), $"the slow download took only {watch.Elapsed}");
        Assert.Equal(id, (await hulld.StatusAsync(image))?.Id);
        Assert.Equal(1, proxy.GetCount(layer.Digest));
    }
}
