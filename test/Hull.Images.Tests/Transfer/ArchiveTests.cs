using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Transfer;
using Hull.Images.Unpack;

namespace Hull.Images.Tests.Transfer;

public sealed class ArchiveTests
{
    private static readonly HandmadeImage Image = HandmadeImage.Create();

    private static async Task<byte[]> ExportAsync(ArchiveStores stores, params string[] names)
    {
        var records = new List<Store.ImageRecord>();
        foreach (var name in names) records.Add((await stores.Images.GetAsync(name, default))!);
        var output = new MemoryStream();
        await stores.Exporter.ExportAsync(records, output, null, default);
        return output.ToArray();
    }

    [Fact]
    public async Task Export_then_import_into_a_fresh_store_gives_the_same_image_unpacked()
    {
        using var source = await ArchiveStores.OpenAsync();
        await Image.StoreAsync(source);
        var progress = new List<TransferProgress>();
        var output = new MemoryStream();
        var result = await source.Exporter.ExportAsync([(await source.Images.GetAsync(HandmadeImage.Name, default))!], output,
            new SyncProgress<TransferProgress>(progress.Add), default);
        var archive = output.ToArray();
        Assert.Equal(4, result.Blobs);
        Assert.Contains(progress, p => p.Kind == "image" && p.Phase == TransferPhase.Done && p.Digest == Image.ManifestDigest);

        // The layout: oci-layout, an index.json naming the image both ways, every blob under blobs/sha256.
        var files = ArchiveTar.Read(archive);
        Assert.Equal("1.0.0", JsonDocument.Parse(files["oci-layout"]).RootElement.GetProperty("imageLayoutVersion").GetString());
        var entry = JsonDocument.Parse(files["index.json"]).RootElement.GetProperty("manifests")[0];
        Assert.Equal(Image.ManifestDigest, entry.GetProperty("digest").GetString());
        Assert.Equal(MediaTypes.OciManifest, entry.GetProperty("mediaType").GetString());
        Assert.Equal("v1", entry.GetProperty("annotations").GetProperty(OciArchive.RefNameAnnotation).GetString());
        Assert.Equal(HandmadeImage.Name, entry.GetProperty("annotations").GetProperty(OciArchive.ImageNameAnnotation).GetString());
        Assert.Equal(Image.Manifest, files[OciArchive.BlobPath(Image.ManifestDigest)]);
        Assert.Equal(Image.Config, files[OciArchive.BlobPath(Image.ConfigDigest)]);
        foreach (var layer in Image.Layers) Assert.Equal(layer, files[OciArchive.BlobPath(Digests.Sha256(layer))]);

        using var destination = await ArchiveStores.OpenAsync();
        var imported = await destination.Importer.ImportAsync(new MemoryStream(archive), new ImportOptions(), null, default);
        Assert.Equal([HandmadeImage.Name, "registry.example.com/hull/handmade@" + Image.ManifestDigest], imported.Select(r => r.Name));
        var record = imported[0];
        Assert.Equal(Image.ConfigDigest, record.Id);
        Assert.Equal(Image.ManifestDigest, record.ManifestDigest);
        Assert.Equal(Image.ChainId, record.ChainId);
        Assert.Equal(Snapshotters.Native, record.Snapshotter);
        Assert.Equal(SnapshotKind.Committed, (await destination.Snapshotter.StatAsync(Image.ChainId, default)).Kind);
        Assert.Equal("hello from the lower layer", await destination.ReadFromSnapshotAsync(Image.ChainId, "etc/hello"));
        Assert.Equal("second layer", await destination.ReadFromSnapshotAsync(Image.ChainId, "etc/second"));
        await Assert.ThrowsAsync<FileNotFoundException>(() => destination.ReadFromSnapshotAsync(Image.ChainId, "etc/gone"));
        Assert.Equal(HandmadeImage.Name, (await destination.Images.GetAsync(HandmadeImage.Name, default))?.Name);

        // The export is deterministic: the imported image exports to the same bytes.
        Assert.Equal(archive, await ExportAsync(destination, HandmadeImage.Name));
    }

    [Fact]
    public async Task Importing_twice_reuses_blobs_and_snapshots_and_a_given_name_replaces_the_archive_names()
    {
        using var stores = await ArchiveStores.OpenAsync();
        var archive = Image.Archive();
        await stores.ImportAsync(archive);
        var snapshots = await stores.Snapshotter.WalkAsync(default);
        var progress = new List<TransferProgress>();
        var again = await stores.Importer.ImportAsync(new MemoryStream(archive), new ImportOptions { Name = "other.example/renamed" },
            new SyncProgress<TransferProgress>(progress.Add), default);
        Assert.Equal(["other.example/renamed:latest", "other.example/renamed@" + Image.ManifestDigest], again.Select(r => r.Name));
        Assert.Equal(Image.ConfigDigest, again[0].Id);
        Assert.Equal(snapshots.Select(s => s.Key), (await stores.Snapshotter.WalkAsync(default)).Select(s => s.Key));
        Assert.Equal(4, progress.Count(p => p.Kind == "blob" && p.Phase == TransferPhase.AlreadyPresent));
        Assert.Equal(2, progress.Count(p => p.Kind == "layer" && p.Phase == TransferPhase.AlreadyPresent));
        Assert.Equal(4, (await stores.Images.ListAsync(default)).Count);
    }

    [Fact]
    public async Task A_gzip_compressed_archive_and_entries_named_with_a_dot_slash_import()
    {
        using var stores = await ArchiveStores.OpenAsync();
        var files = ArchiveTar.Read(Image.Archive());
        var dotted = ArchiveTar.Write(files.Select(f => ("./" + f.Key, f.Value)));
        var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(dotted);
        var record = await stores.ImportAsync(gz.ToArray());
        Assert.Equal(Image.ConfigDigest, record.Id);
    }

    [Fact]
    public async Task An_archive_missing_a_layer_fails_naming_it_and_leaves_nothing()
    {
        using var stores = await ArchiveStores.OpenAsync();
        string layer = Digests.Sha256(Image.Layers[1]);
        var archive = Image.Archive(edit: blobs => blobs.Remove(OciArchive.BlobPath(layer)));
        var e = await Assert.ThrowsAsync<HullException>(() => stores.ImportAsync(archive));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"layer 2 of image \"{HandmadeImage.Name}\" needs blob {layer}", e.Message);
        await stores.AssertEmptyAsync();
    }

    [Fact]
    public async Task A_blob_whose_content_does_not_match_its_name_fails_and_leaves_nothing()
    {
        using var stores = await ArchiveStores.OpenAsync();
        string layer = Digests.Sha256(Image.Layers[0]);
        var archive = Image.Archive(edit: blobs =>
        {
            var tampered = (byte[])blobs[OciArchive.BlobPath(layer)].Clone();
            tampered[^5] ^= 0xff;
            blobs[OciArchive.BlobPath(layer)] = tampered;
        });
        var e = await Assert.ThrowsAsync<HullException>(() => stores.ImportAsync(archive));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"archive entry \"{OciArchive.BlobPath(layer)}\" does not hold the blob its name says", e.Message);
        Assert.Contains("digest mismatch", e.Message);
        await stores.AssertEmptyAsync();
    }

    [Fact]
    public async Task A_layer_whose_diff_id_is_not_the_configs_fails_and_leaves_nothing()
    {
        using var stores = await ArchiveStores.OpenAsync();
        // A consistent archive (every digest right) whose config lists the layers the other way round.
        var bad = HandmadeImage.Create(swapDiffIds: true);
        var e = await Assert.ThrowsAsync<HullException>(() => stores.ImportAsync(bad.Archive()));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("diff_id", e.Message);
        await stores.AssertEmptyAsync();
    }

    [Theory]
    [InlineData("no-layout", "no oci-layout file")]
    [InlineData("no-index", "no index.json")]
    [InlineData("bad-blob-name", "is not named blobs/<algorithm>/<hex digest>")]
    [InlineData("not-a-tar", "not a readable tar")]
    [InlineData("bare-tag", "named only by the tag \"v1\"")]
    [InlineData("no-name", "has no name")]
    public async Task Malformed_archives_fail_with_a_clear_error_and_leave_nothing(string kind, string message)
    {
        using var stores = await ArchiveStores.OpenAsync();
        var files = ArchiveTar.Read(Image.Archive());
        byte[] archive = kind switch
        {
            "no-layout" => ArchiveTar.Write(files.Where(f => f.Key != "oci-layout").Select(f => (f.Key, f.Value))),
            "no-index" => ArchiveTar.Write(files.Where(f => f.Key != "index.json").Select(f => (f.Key, f.Value))),
            "bad-blob-name" => ArchiveTar.Write(files.Select(f => (f.Key, f.Value)).Append(("blobs/sha256/nothex", "x"u8.ToArray()))),
            "not-a-tar" => Encoding.UTF8.GetBytes(new string('x', 2048)),
            "bare-tag" => Image.Archive(refName: "v1"),
            "no-name" => Image.Archive(refName: null),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var e = await Assert.ThrowsAsync<HullException>(() => stores.ImportAsync(archive));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(message, e.Message);
        await stores.AssertEmptyAsync();
    }

    [Fact]
    public async Task An_archive_of_several_images_imports_each_under_its_names_and_refuses_one_given_name()
    {
        using var source = await ArchiveStores.OpenAsync();
        var first = await Image.StoreAsync(source);
        var alias = await Image.StoreAsync(source, "registry.example.com/hull/alias:v1");
        var other = HandmadeImage.Create(env: "2");
        var second = await other.StoreAsync(source, "registry.example.com/hull/second:v2");
        var output = new MemoryStream();
        var result = await source.Exporter.ExportAsync([first, alias, second], output, null, default);
        Assert.Equal(3, result.Images.Count);
        Assert.Equal(6, result.Blobs); // the layers are shared: written once
        var archive = output.ToArray();
        Assert.Equal(3, JsonDocument.Parse(ArchiveTar.Read(archive)["index.json"]).RootElement.GetProperty("manifests").GetArrayLength());

        using var destination = await ArchiveStores.OpenAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => destination.ImportAsync(archive, "registry.example.com/one:name"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("the archive holds 2 images; a name can only be given for an archive of one image", e.Message);
        await destination.AssertEmptyAsync();

        var all = await destination.Importer.ImportAsync(new MemoryStream(archive), new ImportOptions(), null, default);
        Assert.Equal(Image.ConfigDigest, all.Single(r => r.Name == HandmadeImage.Name).Id);
        Assert.Equal(Image.ConfigDigest, all.Single(r => r.Name == "registry.example.com/hull/alias:v1").Id);
        Assert.Equal(other.ConfigDigest, all.Single(r => r.Name == "registry.example.com/hull/second:v2").Id);
        Assert.Equal(Image.ChainId, other.ChainId);
    }

    [SkopeoFact]
    public async Task An_archive_skopeo_wrote_from_a_test_image_imports_under_the_given_name()
    {
        string layouts = await TestImageLayouts.DirectoryAsync();
        string layout = Path.Combine(layouts, "busybox");
        using var temp = new Registry.TestDirectory();
        string tar = temp.Sub("busybox.tar");
        var copy = await TestImageLayouts.RunAsync("skopeo", ["copy", "-q", $"oci:{layout}:latest", $"oci-archive:{tar}"]);
        Assert.True(copy.ExitCode == 0, copy.Output);
        var manifest = ManifestOf(layout);

        using var stores = await ArchiveStores.OpenAsync();
        // skopeo names nothing in index.json (no destination reference): the import needs a name.
        await using (var unnamed = File.OpenRead(tar))
            Assert.Contains("has no name", (await Assert.ThrowsAsync<HullException>(() => stores.ImportAsync(unnamed))).Message);
        await stores.AssertEmptyAsync();

        await using var archive = File.OpenRead(tar);
        var record = await stores.ImportAsync(archive, "hull-test/busybox:imported");
        Assert.Equal("docker.io/hull-test/busybox:imported", record.Name);
        Assert.Equal(manifest.Config.Digest, record.Id);
        var config = ImageConfig.Parse(await File.ReadAllBytesAsync(BlobFile(layout, manifest.Config.Digest)), "busybox");
        Assert.Equal(ChainIds.Compute(config.RootFs.DiffIds)[^1], record.ChainId);
        Assert.Equal(SnapshotKind.Committed, (await stores.Snapshotter.StatAsync(record.ChainId, default)).Kind);
        Assert.Contains("hulltest", await stores.ReadFromSnapshotAsync(record.ChainId, "etc/passwd"));
    }

    [SkopeoFact]
    public async Task A_multi_platform_archive_imports_the_nodes_platform_under_its_full_ref_name()
    {
        string layout = Path.Combine(await TestImageLayouts.DirectoryAsync(), "multiarch");
        using var temp = new Registry.TestDirectory();
        string tar = temp.Sub("multiarch.tar");
        var copy = await TestImageLayouts.RunAsync("skopeo",
            ["copy", "-q", "--all", $"oci:{layout}:latest", $"oci-archive:{tar}:registry.example.com/hull/multiarch:v1"]);
        Assert.True(copy.ExitCode == 0, copy.Output);
        var indexJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(layout, "index.json"))).RootElement.GetProperty("manifests")[0];
        string indexDigest = indexJson.GetProperty("digest").GetString()!;
        var index = (ImageIndex)ManifestDocument.Parse(File.ReadAllBytes(BlobFile(layout, indexDigest)), MediaTypes.OciIndex, "multiarch");
        var expected = PlatformMatcher.Default.Select(index.Manifests)!;

        using var stores = await ArchiveStores.OpenAsync();
        await using var archive = File.OpenRead(tar);
        var record = await stores.ImportAsync(archive);
        Assert.Equal("registry.example.com/hull/multiarch:v1", record.Name);
        Assert.Equal(indexDigest, record.Target.Digest);
        Assert.Equal(MediaTypes.OciIndex, record.Target.MediaType);
        Assert.Equal(expected.Digest, record.ManifestDigest);
        var config = ImageConfig.Parse(await File.ReadAllBytesAsync(BlobFile(layout, record.Id)), "multiarch");
        Assert.Contains($"HULL_PLATFORM={expected.Platform!.Os}/{expected.Platform.Architecture}", config.Config.Env!);

        // The whole index is in the store, so an export writes it whole again.
        var output = new MemoryStream();
        var result = await stores.Exporter.ExportAsync([record], output, null, default);
        Assert.Equal(indexDigest, Assert.Single(result.Images).Root.Digest);
        Assert.Contains(OciArchive.BlobPath(index.Manifests[1].Digest), ArchiveTar.Read(output.ToArray()).Keys);
    }

    private static string BlobFile(string layout, string digest) => Path.Combine(layout, OciArchive.BlobPath(digest));

    private static ImageManifest ManifestOf(string layout)
    {
        var digest = JsonDocument.Parse(File.ReadAllText(Path.Combine(layout, "index.json"))).RootElement
            .GetProperty("manifests")[0].GetProperty("digest").GetString()!;
        return (ImageManifest)ManifestDocument.Parse(File.ReadAllBytes(BlobFile(layout, digest)), MediaTypes.OciManifest, "layout");
    }
}
