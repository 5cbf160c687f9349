using System.Security.Cryptography;
using System.Text.Json;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>Every test image variant pulls over CRI and unpacks into overlayfs snapshots as its layers say.</summary>
public sealed class PullVariantTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private const string CharDevice = "character special file";

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Multilayer_unpacks_one_snapshot_per_layer_with_whiteouts_hard_links_xattrs_owners_setuid_and_an_opaque_dir()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var image = pushed.Images.Multilayer;
        await hulld.PullAsync(image.Reference);
        var info = await hulld.VerboseInfoAsync(image.Reference);
        Assert.Equal("overlayfs", info.GetProperty("snapshotter").GetString());

        // Layers are unpacked parent first, so snapshot ids follow the manifest's layer order.
        var layer = hulld.SnapshotDirs().Select(d => Path.Combine(d, "fs")).ToArray();
        Assert.Equal(6, layer.Length);

        // 0: busybox, with hulltest's home owned by 1000.
        Assert.Equal(HostBusyboxSha256(), FileSha256(Path.Combine(layer[0], "bin", "busybox")));
        Assert.Equal(1000, (await ImageTestSupport.StatAsync(Path.Combine(layer[0], "home", "hulltest"))).Uid);
        Assert.False(Directory.Exists(Path.Combine(layer[0], "data")));

        // 1: adds files only.
        Assert.Equal("b\n", await File.ReadAllTextAsync(Path.Combine(layer[1], "data", "b.txt")));
        Assert.True(File.Exists(Path.Combine(layer[1], "data", "gone", "x")));

        // 2: a deleted file and a deleted directory become overlay whiteouts (0/0 character devices).
        foreach (var deleted in new[] { "data/b.txt", "data/gone" })
        {
            var stat = await ImageTestSupport.StatAsync(Path.Combine(layer[2], deleted));
            Assert.Equal((CharDevice, 0, 0), (stat.Type, stat.Major, stat.Minor));
        }
        Assert.Equal(["data"], Directory.EnumerateFileSystemEntries(layer[2]).Select(Path.GetFileName));

        // 3: the replaced directory: per-file whiteouts plus the new file.
        Assert.Equal(CharDevice, (await ImageTestSupport.StatAsync(Path.Combine(layer[3], "data", "replaced", "old1"))).Type);
        Assert.Equal(CharDevice, (await ImageTestSupport.StatAsync(Path.Combine(layer[3], "data", "replaced", "old2"))).Type);
        Assert.Equal("new\n", await File.ReadAllTextAsync(Path.Combine(layer[3], "data", "replaced", "new")));

        // 4: hard link, xattr, owner, setuid, symlinks.
        var a = await ImageTestSupport.StatAsync(Path.Combine(layer[4], "data", "a.txt"));
        var hardLink = await ImageTestSupport.StatAsync(Path.Combine(layer[4], "data", "hardlink-to-a"));
        Assert.Equal((a.Inode, 2), (hardLink.Inode, hardLink.Links));
        Assert.Equal("hello", ImageTestSupport.Xattr(Path.Combine(layer[4], "data", "xattr.txt"), "user.hull.test"));
        var owned = await ImageTestSupport.StatAsync(Path.Combine(layer[4], "data", "owned"));
        Assert.Equal((1000, 1000, Convert.ToInt32("640", 8)), (owned.Uid, owned.Gid, owned.Mode));
        Assert.Equal(Convert.ToInt32("4755", 8), (await ImageTestSupport.StatAsync(Path.Combine(layer[4], "data", "suid"))).Mode);
        Assert.Equal("a.txt", new FileInfo(Path.Combine(layer[4], "data", "link-to-a")).LinkTarget);
        Assert.Equal("/data/a.txt", new FileInfo(Path.Combine(layer[4], "data", "abs-link")).LinkTarget);

        // 5: the opaque whiteout is the overlay xattr on the directory, not a file.
        Assert.Equal("y", ImageTestSupport.Xattr(Path.Combine(layer[5], "data", "opaque"), "trusted.overlay.opaque"));
        Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(Path.Combine(layer[5], "data", "opaque")).Select(Path.GetFileName));

        // The chain, mounted as a container's lower layers, is the image's file system.
        var merged = Directory.CreateTempSubdirectory("hull-e2e-merged-").FullName;
        try
        {
            var mount = await ProcessRunner.RunAsync("mount", ["-t", "overlay", "overlay", "-o", "lowerdir=" + string.Join(':', layer.Reverse()), merged]);
            Assert.True(mount.ExitCode == 0, mount.ToString());
            try
            {
                string data = Path.Combine(merged, "data");
                Assert.Equal(["a.txt", "abs-link", "hardlink-to-a", "keep", "link-to-a", "opaque", "owned", "replaced", "suid", "xattr.txt"],
                    Directory.EnumerateFileSystemEntries(data).Select(Path.GetFileName).Order(StringComparer.Ordinal));
                Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(Path.Combine(data, "replaced")).Select(Path.GetFileName));
                Assert.Equal(["new"], Directory.EnumerateFileSystemEntries(Path.Combine(data, "opaque")).Select(Path.GetFileName));
                Assert.Equal("k\n", await File.ReadAllTextAsync(Path.Combine(data, "keep", "k.txt")));
                Assert.True(File.Exists(Path.Combine(merged, "bin", "busybox")));
            }
            finally
            {
                var umount = await ProcessRunner.RunAsync("umount", [merged]);
                Assert.True(umount.ExitCode == 0, umount.ToString());
            }
        }
        finally
        {
            Directory.Delete(merged, recursive: true);
        }
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Zstd_uncompressed_and_docker_schema2_variants_each_unpack_to_busybox()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var busybox = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Busybox);
        var (_, _, config) = await ConfigAsync(pushed.Images.Busybox);
        string diffId = config.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString()!;

        foreach (var (image, layerType) in new[]
        {
            (pushed.Images.Zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (pushed.Images.Uncompressed, "application/vnd.oci.image.layer.v1.tar"),
            (pushed.Images.DockerSchema2, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        })
        {
            var manifest = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, image);
            Assert.Equal(layerType, Assert.Single(manifest.Layers).MediaType);

            string id = await hulld.PullAsync(image.Reference);
            Assert.Equal(manifest.Config.Digest, id);
            var info = await hulld.VerboseInfoAsync(image.Reference);
            // One layer: its chain ID is its diff ID, which the unpacker checked against the config.
            Assert.Equal(diffId, info.GetProperty("chainID").GetString());
            Assert.Equal(manifest.Digest, info.GetProperty("manifestDigest").GetString());
            var status = await hulld.StatusAsync(image.Reference);
            Assert.Contains(image.DigestReference, status!.RepoDigests);
            var snapshot = Assert.Single(hulld.SnapshotDirs());
            Assert.Equal(HostBusyboxSha256(), FileSha256(Path.Combine(snapshot, "fs", "bin", "busybox")));
            Assert.Equal("busybox", new FileInfo(Path.Combine(snapshot, "fs", "bin", "sh")).LinkTarget);

            // Start from an empty store for the next variant, so each one really unpacks.
            await hulld.RemoveAsync(image.Reference);
            await hulld.AssertStoreIsEmptyAsync();
        }
        Assert.Equal(busybox.Config.Digest, (await ImageTestSupport.ManifestAsync(pushed.Registry.Host, pushed.Images.Zstd)).Config.Digest);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Multiarch_index_pulls_the_linux_amd64_manifest()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var image = pushed.Images.Multiarch;
        var (mediaType, indexDigest, index) = await ImageTestSupport.RawManifestAsync(pushed.Registry.Host, image.RepositoryPath, image.Tag);
        Assert.Equal(ImageTestSupport.OciIndex, mediaType);
        string amd64 = index.GetProperty("manifests").EnumerateArray()
            .Single(m => m.GetProperty("platform").GetProperty("architecture").GetString() == "amd64").GetProperty("digest").GetString()!;

        await hulld.PullAsync(image.Reference);
        var info = await hulld.VerboseInfoAsync(image.Reference);
        Assert.Equal(amd64, info.GetProperty("manifestDigest").GetString());
        var spec = info.GetProperty("imageSpec");
        Assert.Equal("amd64", spec.GetProperty("architecture").GetString());
        Assert.Contains("HULL_PLATFORM=linux/amd64", spec.GetProperty("config").GetProperty("Env").EnumerateArray().Select(e => e.GetString()));
        // The digest name is the index's: what the kubelet asked for, not the platform manifest.
        var status = await hulld.StatusAsync(image.Reference);
        Assert.Equal([$"{image.Repository}@{indexDigest}"], status!.RepoDigests);
        Assert.Single(hulld.SnapshotDirs());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Docker_schema1_is_refused_and_recorded_as_a_deprecation_warning()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var image = pushed.Images.DockerSchema1;

        var error = await hulld.PullFailsAsync(image.Reference);
        error.AssertCode(StatusCode.FailedPrecondition);
        Assert.Contains("schema 1", error.Status.Detail);
        Assert.Contains(image.Reference, error.Status.Detail);
        await hulld.AssertStoreIsEmptyAsync();

        const string id = "io.containerd.deprecation/pull-schema-1-image";
        var list = await ProcessRunner.DotnetAsync(Repo.HullctlDll, ["--address", hulld.Socket, "deprecations", "list", "--format", "json"]);
        Assert.True(list.ExitCode == 0, list.ToString());
        var warning = JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray().Single(w => w.GetProperty("id").GetString() == id);
        Assert.Contains("schema 1", warning.GetProperty("message").GetString());

        var status = await hulld.Cri.StatusAsync();
        var condition = status.Status.Conditions.Single(c => c.Type == "ContainerRuntimeHasNoDeprecations");
        Assert.False(condition.Status);
        Assert.Contains(id, JsonDocument.Parse(condition.Message).RootElement.EnumerateObject().Select(p => p.Name));
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task A_name_without_a_tag_is_pulled_as_latest()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var busybox = pushed.Images.Busybox;
        Assert.Equal("latest", busybox.Tag);

        string id = await hulld.PullAsync(busybox.Repository);
        var image = Assert.Single(await hulld.ListImagesAsync());
        Assert.Equal(id, image.Id);
        Assert.Equal([busybox.Reference], image.RepoTags);
        Assert.Equal([busybox.DigestReference], image.RepoDigests);
        Assert.Equal(id, (await hulld.StatusAsync(busybox.Repository))?.Id);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task ImageFsInfo_used_bytes_and_inodes_grow_with_a_pull()
    {
        await using var hulld = await PullTests.StartHulldForAsync(pushed.Registry);
        var before = await hulld.ImageFsAsync();
        Assert.Equal(Path.Combine(hulld.Root, "snapshots"), before.FsId.Mountpoint);

        await hulld.PullAsync(pushed.Images.Multilayer.Reference);
        var after = await hulld.ImageFsAsync();
        long busybox = new FileInfo("/bin/busybox").Length;
        Assert.True(after.UsedBytes.Value >= before.UsedBytes.Value + (ulong)busybox,
            $"used bytes went from {before.UsedBytes.Value} to {after.UsedBytes.Value} for an image with a {busybox}-byte busybox");
        Assert.True(after.InodesUsed.Value > before.InodesUsed.Value + 50, $"inodes went from {before.InodesUsed.Value} to {after.InodesUsed.Value}");
        Assert.True(after.Timestamp >= before.Timestamp);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task An_image_named_in_pinned_images_is_listed_as_pinned_and_others_are_not()
    {
        var busybox = pushed.Images.Busybox;
        await using var hulld = await ImageTestSupport.StartHulldAsync(pushed.Registry.Host, extraSections: $"""
            [plugins.'io.containerd.cri.v1.images'.pinned_images]
              sandbox = '{busybox.Repository}'
            """);
        await hulld.PullAsync(busybox.Reference);
        await hulld.PullAsync(pushed.Images.Multilayer.Reference);

        var images = (await hulld.ListImagesAsync()).ToDictionary(i => i.RepoTags.Single());
        Assert.True(images[busybox.Reference].Pinned);
        Assert.False(images[pushed.Images.Multilayer.Reference].Pinned);
        Assert.True((await hulld.StatusAsync(busybox.DigestReference))?.Pinned);
    }

    private async Task<(string MediaType, string Digest, JsonElement Json)> ConfigAsync(TestImage image)
    {
        var manifest = await ImageTestSupport.ManifestAsync(pushed.Registry.Host, image);
        using var client = pushed.Registry.CreateClient();
        var bytes = await client.GetByteArrayAsync($"v2/{image.RepositoryPath}/blobs/{manifest.Config.Digest}");
        return (manifest.Config.MediaType, manifest.Config.Digest, JsonDocument.Parse(bytes).RootElement.Clone());
    }

    private static string FileSha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static string HostBusyboxSha256() => FileSha256("/bin/busybox");
}
