using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Tests.Content;
using Hull.Images.Tests.Unpack;
using Hull.Images.Transfer;
using Hull.Images.Unpack;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Tests.Transfer;

/// <summary>One node's image stores in a temp root: content, native snapshotter, image names, leases and GC.</summary>
internal sealed class ArchiveStores : IDisposable
{
    private readonly TestRoot _root;

    private ArchiveStores(TestRoot root, ContentStore content)
    {
        _root = root;
        Content = content;
        Snapshotter = new NativeSnapshotter(root.Path, root.Metadata);
        Images = new ImageStore(root.Metadata);
        Leases = new LeaseManager();
        Gc = new GarbageCollector(Content, Snapshotter, Images, Leases, NullLogger.Instance);
        Importer = new OciArchiveImporter(Content, Snapshotter, Images, Leases, Gc);
        Exporter = new OciArchiveExporter(Content, Leases);
    }

    public static async Task<ArchiveStores> OpenAsync()
    {
        var root = new TestRoot();
        try
        {
            return new ArchiveStores(root, await ContentStore.OpenAsync(root.Path, root.Metadata));
        }
        catch
        {
            root.Dispose();
            throw;
        }
    }

    public ContentStore Content { get; }
    public ISnapshotter Snapshotter { get; }
    public ImageStore Images { get; }
    public LeaseManager Leases { get; }
    public GarbageCollector Gc { get; }
    public OciArchiveImporter Importer { get; }
    public OciArchiveExporter Exporter { get; }
    public string Root => _root.Path;

    public void Dispose() => _root.Dispose();

    /// <summary>Commits bytes as a blob and returns its descriptor.</summary>
    public async Task<Descriptor> PutBlobAsync(string mediaType, byte[] bytes)
    {
        var descriptor = new Descriptor(mediaType, Digests.Sha256(bytes), bytes.Length);
        if (await Content.TryInfoAsync(descriptor.Digest, default) is not null) return descriptor;
        await using var writer = await Content.OpenWriterAsync("test-" + descriptor.Digest, descriptor, default);
        await writer.WriteAsync(bytes);
        await writer.CommitAsync();
        return descriptor;
    }

    public Task<ImageRecord> ImportAsync(byte[] archive, string? name = null) =>
        ImportAsync(new MemoryStream(archive), name);

    public async Task<ImageRecord> ImportAsync(Stream archive, string? name = null) =>
        (await Importer.ImportAsync(archive, new ImportOptions { Name = name }, null, default))[0];

    /// <summary>Nothing of any image is in the stores: no blob, ingest, snapshot or name.</summary>
    public async Task AssertEmptyAsync()
    {
        Assert.Empty(await Content.WalkAsync(default));
        Assert.Empty(await Content.ListIngestsAsync(default));
        Assert.Empty(await Snapshotter.WalkAsync(default));
        Assert.Empty(await Images.ListAsync(default));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Root, "content", "blobs"), "*", SearchOption.AllDirectories));
    }

    /// <summary>Reads a file of a committed snapshot through a read-only view (the native snapshotter's bind source).</summary>
    public async Task<string> ReadFromSnapshotAsync(string chainId, string path)
    {
        string key = "view-" + Guid.NewGuid().ToString("N");
        var mount = Assert.Single(await Snapshotter.ViewAsync(key, chainId));
        try
        {
            return await File.ReadAllTextAsync(Path.Combine(mount.Source, path));
        }
        finally
        {
            await Snapshotter.RemoveAsync(key, default);
        }
    }
}

/// <summary>A two-layer image made by hand: TarWriter layers (gzip), a config with their diff IDs, an OCI manifest.</summary>
internal sealed record HandmadeImage(byte[] Manifest, byte[] Config, IReadOnlyList<byte[]> Layers, IReadOnlyList<string> DiffIds)
{
    public const string Name = "registry.example.com/hull/handmade:v1";

    public string ManifestDigest => Digests.Sha256(Manifest);
    public string ConfigDigest => Digests.Sha256(Config);
    public string ChainId => ChainIds.Compute(DiffIds)[^1];
    public Descriptor ManifestDescriptor => new(MediaTypes.OciManifest, ManifestDigest, Manifest.Length);

    /// <param name="env">The value of HANDMADE in the config's Env: another value is another image with the same layers.</param>
    /// <param name="swapDiffIds">List the layers' diff IDs in the wrong order (every digest in the archive stays right).</param>
    public static HandmadeImage Create(string env = "1", bool swapDiffIds = false)
    {
        var lower = new LayerBuilder().Dir("etc").File("etc/hello", "hello from the lower layer").File("etc/gone", "x").Build();
        var upper = new LayerBuilder().Dir("etc").File("etc/second", "second layer").Whiteout("etc/gone").Build();
        byte[][] layers = [LayerBuilder.Gzip(lower), LayerBuilder.Gzip(upper)];
        string[] diffIds = [LayerBuilder.DiffId(lower), LayerBuilder.DiffId(upper)];
        var config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new Dictionary<string, object> { ["Cmd"] = new[] { "/bin/sh" }, ["Env"] = new[] { "HANDMADE=" + env } },
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = swapDiffIds ? diffIds.Reverse().ToArray() : diffIds },
        });
        string Descriptor(string mediaType, byte[] bytes) =>
            $$"""{"mediaType":"{{mediaType}}","digest":"{{Digests.Sha256(bytes)}}","size":{{bytes.Length}}}""";
        var manifest = Encoding.UTF8.GetBytes(
            $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{Descriptor(MediaTypes.OciConfig, config)}},"layers":[{{string.Join(",", layers.Select(l => Descriptor(MediaTypes.OciLayerGzip, l)))}}]}""");
        return new HandmadeImage(manifest, config, layers, diffIds);
    }

    /// <summary>Stores the blobs and names the image, as a pull would have (without unpacking: export needs content only).</summary>
    public async Task<ImageRecord> StoreAsync(ArchiveStores stores, string name = Name)
    {
        await stores.PutBlobAsync(MediaTypes.OciConfig, Config);
        foreach (var layer in Layers) await stores.PutBlobAsync(MediaTypes.OciLayerGzip, layer);
        await stores.PutBlobAsync(MediaTypes.OciManifest, Manifest);
        var now = DateTimeOffset.UtcNow;
        var record = new ImageRecord(name, ManifestDescriptor, ManifestDigest, ConfigDigest, ChainId, Snapshotters.Native,
            Config.Length + Layers.Sum(l => (long)l.Length), new Dictionary<string, string>(), now, now);
        await stores.Images.PutAsync([record], default);
        return record;
    }

    /// <summary>An OCI archive written by hand, with <paramref name="edit"/> applied to its blobs (path → bytes) first.</summary>
    public byte[] Archive(string? refName = Name, Action<Dictionary<string, byte[]>>? edit = null)
    {
        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var blob in Layers.Append(Config).Append(Manifest)) blobs[OciArchive.BlobPath(Digests.Sha256(blob))] = blob;
        edit?.Invoke(blobs);
        string annotations = refName is null ? "" : $$""","annotations":{"{{OciArchive.RefNameAnnotation}}":"{{refName}}"}""";
        var index = Encoding.UTF8.GetBytes(
            $$"""{"schemaVersion":2,"manifests":[{"mediaType":"{{MediaTypes.OciManifest}}","digest":"{{ManifestDigest}}","size":{{Manifest.Length}}{{annotations}}}]}""");
        var files = new List<(string, byte[])> { ("oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray()) };
        files.AddRange(blobs.Select(b => (b.Key, b.Value)));
        files.Add(("index.json", index));
        return ArchiveTar.Write(files);
    }
}

internal static class ArchiveTar
{
    public static byte[] Write(IEnumerable<(string Name, byte[] Content)> files)
    {
        var output = new MemoryStream();
        using (var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in files)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
        }
        return output.ToArray();
    }

    /// <summary>Every regular file of a tar, by name.</summary>
    public static Dictionary<string, byte[]> Read(byte[] archive)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var reader = new TarReader(new MemoryStream(archive));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
            var content = new MemoryStream();
            entry.DataStream?.CopyTo(content);
            files[entry.Name] = content.ToArray();
        }
        return files;
    }
}

/// <summary>
/// The OCI layouts hack/build-test-images.sh builds (the e2e tests' images), built on first use under
/// $HULL_TEST_IMAGES_DIR or /var/tmp/hull-test-images/&lt;script hash&gt;, the same cache the e2e fixture uses.
/// </summary>
internal static class TestImageLayouts
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static bool Available =>
        Environment.UserName == "root" && new[] { "/usr/bin/skopeo", "/usr/bin/umoci" }.All(File.Exists);

    public static async Task<string> DirectoryAsync()
    {
        string repo = RepoRoot();
        string script = Path.Combine(repo, "hack", "build-test-images.sh");
        string dir = Environment.GetEnvironmentVariable("HULL_TEST_IMAGES_DIR") is { Length: > 0 } env
            ? env
            : Path.Combine("/var/tmp/hull-test-images", ScriptHash(repo, script)[..16]);
        await Gate.WaitAsync();
        try
        {
            if (!File.Exists(Path.Combine(dir, "digests")))
            {
                var result = await RunAsync("bash", [script, dir], TimeSpan.FromMinutes(5));
                Assert.True(result.ExitCode == 0, $"{script} failed: {result.Output}");
            }
        }
        finally
        {
            Gate.Release();
        }
        return dir;
    }

    public static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(1));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} timed out");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Hull.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Hull.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>As e2e/Hull.E2E/Fixtures/TestImages.cs computes it: the script and hack/lib, so both share one cache.</summary>
    private static string ScriptHash(string repo, string script)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(script));
        var lib = Path.Combine(repo, "hack", "lib");
        if (Directory.Exists(lib))
            foreach (var file in Directory.EnumerateFiles(lib, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                sha.AppendData(File.ReadAllBytes(file));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}

/// <summary>A fact that needs skopeo and umoci (and root) to build and copy the test images; skipped with the reason otherwise.</summary>
public sealed class SkopeoFactAttribute : FactAttribute
{
    public SkopeoFactAttribute()
    {
        if (!TestImageLayouts.Available) Skip = "needs root, /usr/bin/skopeo and /usr/bin/umoci (Debian packages skopeo, umoci)";
    }
}
