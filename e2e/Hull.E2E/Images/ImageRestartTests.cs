using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>kill -9 of hulld loses no acknowledged image and leaves no half-pulled one.</summary>
public sealed class ImageRestartTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_pull_interrupted_by_kill_9_leaves_no_image_or_snapshot_and_the_next_pull_resumes_the_download()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        var first = await ImageTestSupport.StartHulldAsync(proxy.Host);
        var layer = Assert.Single((await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox)).Layers);
        string image = pushed.Images.Busybox.Via(proxy.Host);
        proxy.BytesPerSecond = 128 * 1024; // about 8 s for the layer
        proxy.Inject(RegistryFault.Slow, ImageTestSupport.GetsOf(layer.Digest));

        var pull = first.PullAsync(image);
        try
        {
            // Kill once part of the layer is on disk and its extraction snapshot exists.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!(IngestBytes(first) > 64 * 1024 && first.SnapshotEntries().Count > 0))
            {
                Assert.True(DateTime.UtcNow < deadline, "the pull never got going");
                Assert.False(pull.IsCompleted, "the pull finished before it could be interrupted");
                await Task.Delay(50);
            }
        }
        finally
        {
            await first.KillAsync();
        }
        var interrupted = await Assert.ThrowsAsync<RpcException>(() => pull);
        interrupted.AssertCode(StatusCode.Unavailable);

        proxy.Clear();
        await using var second = await ImageTestSupport.RestartAsync(first);
        // Startup collection: no image, no snapshot (the extraction was unleased), no blob (the
        // manifest and config were only held by the dead pull's lease).
        Assert.Empty(await second.ListImagesAsync());
        Assert.Null(await second.StatusAsync(image));
        Assert.Empty(second.SnapshotEntries());
        Assert.Empty(second.Blobs());
        // The partial layer download stays as an ingest, as containerd keeps it, so the next pull resumes it.
        var ingest = Assert.Single(Directory.EnumerateDirectories(second.IngestDir()));
        Assert.InRange(new FileInfo(Path.Combine(ingest, "data")).Length, 1, layer.Size - 1);

        int ranged = pushed.Registry.RangedGets(pushed.Images.Busybox.RepositoryPath, layer.Digest);
        string id = await second.PullAsync(image);
        Assert.Equal(id, (await second.StatusAsync(image))?.Id);
        Assert.Equal(2, proxy.GetCount(layer.Digest));
        await pushed.Registry.AssertRangedGetsAsync(pushed.Images.Busybox.RepositoryPath, layer.Digest, ranged + 1);
        Assert.Empty(Directory.EnumerateFileSystemEntries(second.IngestDir()));
        Assert.Single(second.SnapshotDirs());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task An_image_pulled_before_kill_9_is_listed_and_usable_after_the_restart()
    {
        var first = await PullTests.StartHulldForAsync(pushed.Registry);
        var multilayer = pushed.Images.Multilayer;
        string id;
        IReadOnlyList<string> snapshots, blobs;
        System.Text.Json.JsonElement before;
        try
        {
            id = await first.PullAsync(multilayer.Reference);
            snapshots = first.SnapshotDirs();
            blobs = first.Blobs();
            before = await first.VerboseInfoAsync(multilayer.Reference);
        }
        finally
        {
            await first.KillAsync();
        }

        await using var second = await ImageTestSupport.RestartAsync(first);
        var image = Assert.Single(await second.ListImagesAsync());
        Assert.Equal(id, image.Id);
        Assert.Equal([multilayer.Reference], image.RepoTags);
        Assert.Equal([multilayer.DigestReference], image.RepoDigests);
        var after = await second.VerboseInfoAsync(multilayer.Reference);
        Assert.Equal(before.GetProperty("chainID").GetString(), after.GetProperty("chainID").GetString());
        Assert.Equal(snapshots, second.SnapshotDirs());
        Assert.Equal(blobs, second.Blobs());
    }

    private static long IngestBytes(HulldProcess hulld) =>
        Directory.Exists(hulld.IngestDir())
            ? Directory.EnumerateFiles(hulld.IngestDir(), "data", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length)
            : 0;
}
