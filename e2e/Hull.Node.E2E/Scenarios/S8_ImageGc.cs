using Hull.Api.Cri;

namespace Hull.Node.E2E.Scenarios;

public sealed partial class NodeScenarios
{
    /// <summary>
    /// Scenario 8: with the kubelet's image GC thresholds low (the fixture sets high 1 %, low 0 %), its image GC removes
    /// the images no container uses through CRI RemoveImage and keeps the one a running pod uses. The unused images were
    /// pulled before the kubelet started (so they are old enough for its <c>imageMinimumGCAge</c> of 2 minutes); busybox
    /// is used by the fixture's keeper pod all along. The kubelet runs image GC when it starts (too early: its filesystem
    /// stats are not ready yet, so that run always fails) and then every 5 minutes: this test waits for that run, which is
    /// why it goes last.
    /// </summary>
    [KubeFact]
    public async Task S8_image_gc_removes_unused_images_through_RemoveImage_and_keeps_the_one_in_use()
    {
        Assert.True(Node.Settings.ImageGcHighThresholdPercent <= 1, "the fixture's kubelet must run with image GC thresholds low");
        var cri = Node.Runtime.Cri;
        var unused = fixture.UnusedImages.Select(i => Node.PrePulledImages[i.Reference]).ToList();
        var busybox = (await cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = Busybox } })).Image.Id;
        Assert.DoesNotContain(busybox, unused);
        Log($"unused images {string.Join(", ", unused)}; in use by {fixture.KeeperNamespace}/{NodeFixture.KeeperPod}: {busybox}");

        static string Removing(string id) => $"\"Removing image to free bytes\" imageID=\"{id}\"";
        // Bounded below hack/test.sh's 5-minute hang timeout per test.
        var deadline = new[] { Node.NextImageGc + TimeSpan.FromSeconds(60), DateTime.UtcNow + TimeSpan.FromMinutes(4.5) }.Min();
        Log($"the kubelet started at {Node.KubeletStartedAt:HH:mm:ss}; waiting for its image GC until {deadline:HH:mm:ss} at the latest");
        while (DateTime.UtcNow < deadline && !unused.All(id => Node.KubeletLog.Contains(Removing(id), StringComparison.Ordinal)))
            await Task.Delay(2000);

        var gcLog = string.Join('\n', Node.KubeletLog.Split('\n').Where(l => l.Contains("image_gc_manager") || l.Contains("Image garbage collection")
            || l.Contains("Removing image") || l.Contains("RemoveImage")));
        Log("kubelet image GC:\n" + gcLog);
        foreach (var id in unused)
            Assert.True(gcLog.Contains(Removing(id), StringComparison.Ordinal), $"the kubelet did not remove {id} by {deadline:HH:mm:ss}:\n{gcLog}");
        Assert.DoesNotContain($"imageID=\"{busybox}\"", gcLog);
        Assert.DoesNotContain("RemoveImage from image service failed", gcLog);

        var images = (await cri.Image.ListImagesAsync(new ListImagesRequest())).Images.Select(i => i.Id).ToList();
        foreach (var id in unused) Assert.DoesNotContain(id, images);
        Assert.Contains(busybox, images);
        var keeper = await Cluster.GetAsync($"api/v1/namespaces/{fixture.KeeperNamespace}/pods/{NodeFixture.KeeperPod}");
        Assert.True(Pods.IsReady(keeper), "the pod using the kept image is no longer Ready");
        Assert.Equal(0, Pods.RestartCount(keeper, "app"));
    }
}
