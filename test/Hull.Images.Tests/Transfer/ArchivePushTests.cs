using System.Text;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Tests.Registry;
using Hull.Images.Transfer;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Tests.Transfer;

/// <summary>Images imported from an archive pushed to a real docker-registry with <see cref="ImagePusher"/>.</summary>
public sealed class ArchivePushTests : IAsyncLifetime
{
    private static readonly HandmadeImage Native = HandmadeImage.Create();
    private static readonly HandmadeImage Foreign = HandmadeImage.Create(env: "foreign");
    private static readonly Platform NativePlatform = PlatformMatcher.Default.Preference[0];
    private static readonly Platform ForeignPlatform = new("windows", "amd64");

    private RegistryProcess? _registry;
    private readonly RegistryClient _client = new(new RegistryHosts(), PlainRegistryFixture.FastRetries);

    public async Task InitializeAsync()
    {
        if (RegistryProcess.IsAvailable) _registry = await RegistryProcess.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        if (_registry is not null) await _registry.DisposeAsync();
    }

    private ImagePusher Pusher(ArchiveStores stores) =>
        new(_client, stores.Content, stores.Leases, new PushOptions { MaxConcurrentUploads = 1 }, NullLogger.Instance);

    private ImageReference Target(string repoAndTag) => ImageReference.ParseDockerRef($"{_registry!.Host}/{repoAndTag}");

    /// <summary>An OCI index over the native and a foreign platform's manifest, and an archive with all of it.</summary>
    private static (byte[] Index, byte[] Archive) IndexArchive(string name)
    {
        string Entry(HandmadeImage image, Platform platform) =>
            $$$"""{"mediaType":"{{{MediaTypes.OciManifest}}}","digest":"{{{image.ManifestDigest}}}","size":{{{image.Manifest.Length}}},"platform":{"os":"{{{platform.Os}}}","architecture":"{{{platform.Architecture}}}"{{{(platform.Variant is null ? "" : $",\"variant\":\"{platform.Variant}\"")}}}}}""";
        var index = Encoding.UTF8.GetBytes(
            $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[{{Entry(Native, NativePlatform)}},{{Entry(Foreign, ForeignPlatform)}}]}""");
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var image in new[] { Native, Foreign })
            foreach (var blob in image.Layers.Append(image.Config).Append(image.Manifest))
                files[OciArchive.BlobPath(Digests.Sha256(blob))] = blob;
        files[OciArchive.BlobPath(Digests.Sha256(index))] = index;
        files["index.json"] = Encoding.UTF8.GetBytes(
            $$$"""{"schemaVersion":2,"manifests":[{"mediaType":"{{{MediaTypes.OciIndex}}}","digest":"{{{Digests.Sha256(index)}}}","size":{{{index.Length}}},"annotations":{"{{{OciArchive.RefNameAnnotation}}}":"{{{name}}}"}}]}""");
        files["oci-layout"] = """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray();
        return (index, ArchiveTar.Write(files.Select(f => (f.Key, f.Value))));
    }

    [RegistryFact]
    public async Task An_imported_image_pushes_its_blobs_then_its_manifest_and_a_second_push_skips_every_blob()
    {
        using var stores = await ArchiveStores.OpenAsync();
        var record = await stores.ImportAsync(Native.Archive());
        var progress = new List<TransferProgress>();
        var target = Target("hull/pushed:v1");

        var result = await Pusher(stores).PushAsync(record, target, null, new SyncProgress<TransferProgress>(progress.Add), default);
        Assert.Equal((Native.ManifestDigest, Native.ConfigDigest, 3, 0), (result.Pushed.Digest, result.ImageId, result.BlobsUploaded, result.BlobsSkipped));
        Assert.Equal(3, progress.Count(p => p.Phase == TransferPhase.Uploaded && p.Kind is "layer" or "config"));
        Assert.Contains(progress, p => p.Kind == "manifest" && p.Phase == TransferPhase.Uploaded);
        Assert.Equal(TransferPhase.Done, progress[^1].Phase);
        var served = await _client.Repository(target).ResolveAsync();
        Assert.Equal(Native.ManifestDigest, served.Digest);
        Assert.Equal(Native.Manifest, served.Content);

        progress.Clear();
        var again = await Pusher(stores).PushAsync(record, Target("hull/pushed:v2"), null, new SyncProgress<TransferProgress>(progress.Add), default);
        Assert.Equal((0, 3), (again.BlobsUploaded, again.BlobsSkipped));
        Assert.Equal(3, progress.Count(p => p.Phase == TransferPhase.AlreadyPresent));
    }

    [RegistryFact]
    public async Task An_index_whose_children_are_all_present_is_pushed_whole_else_the_platform_manifest_alone()
    {
        using var stores = await ArchiveStores.OpenAsync();
        var (index, archive) = IndexArchive($"{_registry!.Host}/hull/multi:v1");
        var record = await stores.ImportAsync(archive);
        Assert.Equal((Digests.Sha256(index), Native.ManifestDigest, Native.ConfigDigest), (record.Target.Digest, record.ManifestDigest, record.Id));

        // Every child is in the content store (the import wrote them; the index keeps them from GC).
        var whole = await Pusher(stores).PushAsync(record, Target("hull/whole:v1"), null, null, default);
        Assert.Equal(Digests.Sha256(index), whole.Pushed.Digest);
        var repo = _client.Repository(Target("hull/whole:v1"));
        Assert.Equal(Digests.Sha256(index), (await repo.ResolveAsync()).Digest);
        Assert.Equal(Foreign.Manifest, (await repo.FetchManifestAsync(Foreign.ManifestDigest)).Content);
        Assert.True(await repo.BlobExistsAsync(Foreign.ConfigDigest));

        // Without the foreign config, the index cannot be pushed whole: the node's platform manifest goes alone.
        await stores.Content.DeleteAsync(Foreign.ConfigDigest, default);
        var platform = await Pusher(stores).PushAsync(record, Target("hull/platform:v1"), null, null, default);
        Assert.Equal(Native.ManifestDigest, platform.Pushed.Digest);
        var served = await _client.Repository(Target("hull/platform:v1")).ResolveAsync();
        Assert.Equal(Native.ManifestDigest, served.Digest);
        Assert.False(served.IsIndex);
    }
}
