using Hull.Api.Cri;
using Hull.E2E.Fixtures;

namespace Hull.E2E.Images;

/// <summary>The kubelet's image flows over the CRI socket against a real registry.</summary>
public sealed class PullTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    /// <summary>hulld with a hosts.toml that reaches the test registry over plain HTTP.</summary>
    internal static async Task<HulldProcess> StartHulldForAsync(RegistryProcess registry)
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-").FullName;
        var hosts = Path.Combine(dir, "certs.d", registry.Host);
        Directory.CreateDirectory(hosts);
        await File.WriteAllTextAsync(Path.Combine(hosts, "hosts.toml"), $"""
            server = "http://{registry.Host}"
            [host."http://{registry.Host}"]
              capabilities = ["pull", "resolve", "push"]
            """);
        return await HulldProcess.StartInAsync(dir, $"""
            version = 3
            [plugins.'io.containerd.cri.v1.images'.registry]
              config_path = '{Path.Combine(dir, "certs.d")}'
            """);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Pull_list_status_and_remove_an_image_like_the_kubelet()
    {
        await using var hulld = await StartHulldForAsync(pushed.Registry);
        var busybox = pushed.Images.Busybox;

        var pulled = await hulld.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox.Reference } });
        Assert.StartsWith("sha256:", pulled.ImageRef);

        var list = await hulld.Cri.Image.ListImagesAsync(new ListImagesRequest());
        var image = Assert.Single(list.Images);
        Assert.Equal(pulled.ImageRef, image.Id);
        Assert.Contains(busybox.Reference, image.RepoTags);
        Assert.Contains(busybox.DigestReference, image.RepoDigests);
        Assert.True(image.Size > 0);

        foreach (var spec in new[] { busybox.Reference, busybox.DigestReference, pulled.ImageRef })
        {
            var status = await hulld.Cri.Image.ImageStatusAsync(
                new ImageStatusRequest { Image = new ImageSpec { Image = spec }, Verbose = true });
            Assert.Equal(pulled.ImageRef, status.Image?.Id);
            Assert.Contains("chainID", status.Info["info"]);
        }

        var fs = await hulld.Cri.Image.ImageFsInfoAsync(new ImageFsInfoRequest());
        Assert.True(fs.ImageFilesystems[0].UsedBytes.Value > 0);

        await hulld.Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = busybox.Reference } });
        var absent = await hulld.Cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = busybox.Reference } });
        Assert.Null(absent.Image);
        Assert.Empty((await hulld.Cri.Image.ListImagesAsync(new ListImagesRequest())).Images);
        // Removing again is fine, and nothing of the image is left on disk.
        await hulld.Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = busybox.Reference } });
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(hulld.Root, "content", "blobs"), "*", SearchOption.AllDirectories));
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.Combine(hulld.Root, "snapshots", "overlayfs")), d => !Path.GetFileName(d).StartsWith('.'));
    }
}
