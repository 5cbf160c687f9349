using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

/// <summary>One anonymous docker-registry with the test image pushed as <c>hull/test:multi</c>.</summary>
public sealed class PlainRegistryFixture : IAsyncLifetime
{
    public RegistryProcess Registry { get; private set; } = null!;

    public TestImage Image { get; } = TestImage.Create();

    public ImageReference Reference => ImageReference.ParseDockerRef($"{Registry.Host}/hull/test:multi");

    public static RegistryClientOptions FastRetries => new() { RetryDelay = TimeSpan.FromMilliseconds(10), MaxRetryAttempts = 2 };

    public async Task InitializeAsync()
    {
        if (!RegistryProcess.IsAvailable) return;
        Registry = await RegistryProcess.StartAsync();
        // No hosts.toml: 127.0.0.1:port gets containerd's localhost default (HTTPS first, then plain HTTP).
        using var client = new RegistryClient(new RegistryHosts(), FastRetries);
        await Image.PushAsync(client.Repository(Reference), "multi");
    }

    public async Task DisposeAsync()
    {
        if (Registry is not null) await Registry.DisposeAsync();
    }
}

public sealed class RegistryClientTests(PlainRegistryFixture fixture) : IClassFixture<PlainRegistryFixture>, IDisposable
{
    private readonly RegistryClient _client = new(new RegistryHosts(), PlainRegistryFixture.FastRetries);

    public void Dispose() => _client.Dispose();

    private RegistryRepository Repo(string? reference = null) =>
        _client.Repository(reference is null ? fixture.Reference : ImageReference.ParseDockerRef(reference));

    [RegistryFact]
    public async Task Resolving_a_tag_returns_the_pushed_index_with_its_digest()
    {
        FetchedManifest manifest = await Repo().ResolveAsync();

        Assert.Equal(MediaTypes.OciIndex, manifest.MediaType);
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, manifest.Digest);
        Assert.Equal(fixture.Image.Index.Content, manifest.Content);
        Assert.True(manifest.IsIndex);
        Assert.Equal(fixture.Registry.Host, manifest.Host.Host);
    }

    [RegistryFact]
    public async Task Fetching_by_digest_returns_the_same_bytes()
    {
        string digest = fixture.Image.Index.Descriptor.Digest;
        FetchedManifest byDigest = await Repo($"{fixture.Registry.Host}/hull/test@{digest}").ResolveAsync();
        Assert.Equal(fixture.Image.Index.Content, byDigest.Content);
        Assert.Equal(digest, byDigest.Digest);
    }

    [RegistryFact]
    public async Task The_index_entry_for_the_platform_is_selected_and_fetched()
    {
        RegistryRepository repo = Repo();
        var index = Assert.IsType<ImageIndex>((await repo.ResolveAsync()).Parse(repo.Image.ToString()));

        Descriptor? arm = PlatformMatcher.Only(new Platform("linux", "arm64")).Select(index.Manifests);
        TestPlatformImage expected = fixture.Image.For("arm64");
        Assert.Equal(expected.Manifest.Descriptor.Digest, arm?.Digest);

        FetchedManifest child = await repo.FetchManifestAsync(arm!.Digest);
        var manifest = Assert.IsType<ImageManifest>(child.Parse(repo.Image.ToString()));
        Assert.Equal(expected.Config.Descriptor.Digest, manifest.Config.Digest);
        Assert.Equal(fixture.Image.Layer.Descriptor, Assert.Single(manifest.Layers));

        Assert.Null(PlatformMatcher.Only(new Platform("linux", "s390x")).Select(index.Manifests));
    }

    [RegistryFact]
    public async Task A_blob_is_streamed_whole_with_progress()
    {
        TestBlob layer = fixture.Image.Layer;
        var progress = new RecordingProgress();
        await using Stream stream = await Repo().FetchBlobAsync(layer.Descriptor, 0, progress);
        byte[] read = await ReadAllAsync(stream);

        Assert.Equal(layer.Content, read);
        Assert.Equal(layer.Content.Length, progress.Last);
        Assert.True(progress.Count > 1);
    }

    [RegistryFact]
    public async Task A_blob_is_resumed_from_an_offset_with_a_range_request()
    {
        TestBlob layer = fixture.Image.Layer;
        const int offset = 123_457;
        var progress = new RecordingProgress();
        await using Stream stream = await Repo().FetchBlobAsync(layer.Descriptor, offset, progress);

        Assert.Equal(layer.Content[offset..], await ReadAllAsync(stream));
        Assert.Equal(layer.Content.Length, progress.Last); // counts from the blob's start
    }

    [RegistryFact]
    public async Task Reading_from_the_end_of_a_blob_gives_nothing()
    {
        TestBlob config = fixture.Image.Platforms[0].Config;
        await using Stream stream = await Repo().FetchBlobAsync(config.Descriptor, config.Content.Length);
        Assert.Empty(await ReadAllAsync(stream));
        await Assert.ThrowsAsync<HullException>(() => Repo().FetchBlobAsync(config.Descriptor, config.Content.Length + 1));
    }

    [RegistryFact]
    public async Task A_missing_tag_is_NotFound_naming_the_image()
    {
        string reference = $"{fixture.Registry.Host}/hull/test:missing";
        var e = await Assert.ThrowsAsync<RegistryException>(() => Repo(reference).ResolveAsync());
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains($"image \"{reference}\" not found", e.Message);
        Assert.Contains("MANIFEST_UNKNOWN", e.Message);
    }

    [RegistryFact]
    public async Task A_missing_repository_is_NotFound()
    {
        var e = await Assert.ThrowsAsync<RegistryException>(() => Repo($"{fixture.Registry.Host}/nobody/here:1").ResolveAsync());
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }

    [RegistryFact]
    public async Task A_missing_blob_is_NotFound_naming_image_and_digest()
    {
        var missing = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256("nothing"u8), 7);
        var e = await Assert.ThrowsAsync<RegistryException>(() => Repo().FetchBlobAsync(missing));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains(missing.Digest, e.Message);
        Assert.Contains(fixture.Reference.ToString(), e.Message);
    }

    [RegistryFact]
    public async Task Push_skips_blobs_the_registry_has()
    {
        RegistryRepository repo = Repo($"{fixture.Registry.Host}/hull/push-skip:1");
        TestBlob blob = TestBlob.Of("application/octet-stream", "some bytes to push"u8.ToArray());

        Assert.False(await repo.BlobExistsAsync(blob.Descriptor.Digest));
        Assert.True(await repo.PushBlobAsync(blob.Descriptor, new MemoryStream(blob.Content)));
        Assert.True(await repo.BlobExistsAsync(blob.Descriptor.Digest));
        Assert.False(await repo.PushBlobAsync(blob.Descriptor, new MemoryStream(blob.Content)));
    }

    [RegistryFact]
    public async Task A_manifest_pointing_at_missing_blobs_is_rejected_with_the_registrys_error()
    {
        TestImage other = TestImage.Create(new Platform("linux", "riscv64"));
        RegistryRepository repo = Repo($"{fixture.Registry.Host}/hull/incomplete:1");
        TestBlob manifest = other.Platforms[0].Manifest;

        var e = await Assert.ThrowsAsync<RegistryException>(() => repo.PushManifestAsync("1", manifest.Content, MediaTypes.OciManifest));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, e.StatusCode);
        Assert.Contains("MANIFEST_BLOB_UNKNOWN", e.Message);
        Assert.Contains(e.Errors, err => err.Code == "MANIFEST_BLOB_UNKNOWN");
    }

    [RegistryFact]
    public async Task Pushing_a_manifest_under_a_digest_it_does_not_have_is_refused_before_sending()
    {
        var e = await Assert.ThrowsAsync<HullException>(() =>
            Repo().PushManifestAsync(Digests.Sha256("other"u8), fixture.Image.Index.Content, MediaTypes.OciIndex));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [RegistryFact]
    public async Task Ping_answers_with_the_host()
    {
        RegistryHost host = await _client.PingAsync(fixture.Registry.Host);
        Assert.Equal(fixture.Registry.Host, host.Host);
    }

    [RegistryFact]
    public async Task Mirrors_are_tried_in_order_and_a_dead_one_falls_through_to_the_server()
    {
        using var config = new TestDirectory();
        int deadPort = RegistryProcess.FreePort();
        config.Write("mirror.test/hosts.toml", $"""
            server = "http://{fixture.Registry.Host}"

            [host."http://127.0.0.1:{deadPort}"]
              capabilities = ["pull", "resolve"]
              dial_timeout = "1s"
            """);
        using var client = new RegistryClient(new RegistryHosts(config.Path), PlainRegistryFixture.FastRetries);
        RegistryRepository repo = client.Repository(ImageReference.ParseDockerRef("mirror.test/hull/test:multi"));

        FetchedManifest manifest = await repo.ResolveAsync();
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, manifest.Digest);
        Assert.Equal(fixture.Registry.Host, manifest.Host.Host);

        await using Stream blob = await repo.FetchBlobAsync(fixture.Image.Layer.Descriptor);
        Assert.Equal(fixture.Image.Layer.Content, await ReadAllAsync(blob));
    }

    [RegistryFact]
    public async Task A_mirror_without_resolve_is_not_asked_for_tags()
    {
        using var config = new TestDirectory();
        int deadPort = RegistryProcess.FreePort();
        config.Write("mirror.test/hosts.toml", $"""
            server = "http://{fixture.Registry.Host}"
            [host."http://127.0.0.1:{deadPort}"]
              capabilities = ["pull"]
            """);
        var options = PlainRegistryFixture.FastRetries with { MaxRetryAttempts = 0 };
        using var client = new RegistryClient(new RegistryHosts(config.Path), options);
        RegistryRepository repo = client.Repository(ImageReference.ParseDockerRef("mirror.test/hull/test:multi"));

        FetchedManifest manifest = await repo.ResolveAsync();
        Assert.Equal(fixture.Registry.Host, manifest.Host.Host);
    }

    [RegistryFact]
    public async Task Hosts_without_pull_are_not_used_and_no_host_is_a_clear_error()
    {
        using var config = new TestDirectory();
        config.Write("mirror.test/hosts.toml", $"""
            server = "http://{fixture.Registry.Host}"
            capabilities = ["push"]
            """);
        using var client = new RegistryClient(new RegistryHosts(config.Path), PlainRegistryFixture.FastRetries);
        var e = await Assert.ThrowsAsync<HullException>(() => client.Repository(ImageReference.ParseDockerRef("mirror.test/hull/test:multi")).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("no registry host", e.Message);
    }

    internal static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    /// <summary>Synchronous progress sink (Progress&lt;T&gt; posts to the thread pool, out of order).</summary>
    internal sealed class RecordingProgress : IProgress<long>
    {
        private long _last = -1;

        public long Last => Interlocked.Read(ref _last);

        public int Count { get; private set; }

        public void Report(long value)
        {
            Assert.True(value > _last, "progress must only grow");
            Interlocked.Exchange(ref _last, value);
            Count++;
        }
    }
}
