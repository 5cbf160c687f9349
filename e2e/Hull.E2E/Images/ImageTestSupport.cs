using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>A layer or config as a manifest lists it.</summary>
internal sealed record BlobRef(string MediaType, string Digest, long Size);

/// <summary>An image manifest as the registry serves it, for tests that target one blob.</summary>
internal sealed record ManifestInfo(string Digest, BlobRef Config, IReadOnlyList<BlobRef> Layers);

/// <summary>
/// What the image e2e tests share: hulld configured for one or more plain-HTTP registry hosts (a
/// registry or a <see cref="FaultyRegistryProxy"/> in front of one), typed CRI image calls, direct
/// registry look-ups, and the checks that a failed pull left nothing behind.
/// </summary>
internal static class ImageTestSupport
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>
    /// Starts hulld with a hosts.toml per host (plain HTTP, pull and resolve) and, optionally, more keys for
    /// <c>[plugins.'io.containerd.cri.v1.images']</c> and more config sections.
    /// </summary>
    public static async Task<HulldProcess> StartHulldAsync(IEnumerable<string> registryHosts, string imagesKeys = "", string extraSections = "")
    {
        var dir = Directory.CreateTempSubdirectory("hull-e2e-").FullName;
        var certs = Path.Combine(dir, "certs.d");
        foreach (var host in registryHosts)
        {
            Directory.CreateDirectory(Path.Combine(certs, host));
            await File.WriteAllTextAsync(Path.Combine(certs, host, "hosts.toml"), $"""
                server = "http://{host}"
                [host."http://{host}"]
                  capabilities = ["pull", "resolve", "push"]
                """);
        }
        return await HulldProcess.StartInAsync(dir, $"""
            version = 3
            [plugins.'io.containerd.cri.v1.images']
            {imagesKeys}
            [plugins.'io.containerd.cri.v1.images'.registry]
              config_path = '{certs}'
            {extraSections}
            """);
    }

    public static Task<HulldProcess> StartHulldAsync(string registryHost, string imagesKeys = "", string extraSections = "") =>
        StartHulldAsync([registryHost], imagesKeys, extraSections);

    /// <summary>Starts hulld again over a killed or stopped one's directory, with its config.</summary>
    public static async Task<HulldProcess> RestartAsync(HulldProcess previous) =>
        await HulldProcess.StartInAsync(previous.Dir, await File.ReadAllTextAsync(previous.ConfigPath));

    /// <summary>The reference of <paramref name="image"/> as pulled through another host (a proxy).</summary>
    public static string Via(this TestImage image, string host) => $"{host}/{image.RepositoryPath}:{image.Tag}";

    // ---- CRI calls ------------------------------------------------------------------------------

    public static async Task<string> PullAsync(this HulldProcess hulld, string image, AuthConfig? auth = null, TimeSpan? timeout = null)
    {
        var response = await hulld.Cri.Image.PullImageAsync(
            new PullImageRequest { Image = new ImageSpec { Image = image }, Auth = auth }, deadline: CriClient.In(timeout ?? TimeSpan.FromSeconds(60)));
        Assert.StartsWith("sha256:", response.ImageRef);
        return response.ImageRef;
    }

    /// <summary>A pull that must fail; returns the status the kubelet would see.</summary>
    public static Task<RpcException> PullFailsAsync(this HulldProcess hulld, string image, AuthConfig? auth = null, TimeSpan? timeout = null) =>
        Assert.ThrowsAsync<RpcException>(() => hulld.PullAsync(image, auth, timeout));

    /// <summary>The status code, with the message in the failure when it is not the expected one.</summary>
    public static void AssertCode(this RpcException error, StatusCode expected) =>
        Assert.True(error.StatusCode == expected, $"expected {expected}, got {error.StatusCode}: {error.Status.Detail}");

    public static async Task<Image?> StatusAsync(this HulldProcess hulld, string spec) =>
        (await hulld.Cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = spec } })).Image;

    /// <summary>ImageStatus verbose "info": chainID, manifestDigest, snapshotter, imageSpec.</summary>
    public static async Task<JsonElement> VerboseInfoAsync(this HulldProcess hulld, string spec)
    {
        var status = await hulld.Cri.Image.ImageStatusAsync(
            new ImageStatusRequest { Image = new ImageSpec { Image = spec }, Verbose = true });
        Assert.NotNull(status.Image);
        return JsonDocument.Parse(status.Info["info"]).RootElement.Clone();
    }

    public static async Task<IReadOnlyList<Image>> ListImagesAsync(this HulldProcess hulld) =>
        (await hulld.Cri.Image.ListImagesAsync(new ListImagesRequest())).Images;

    public static Task RemoveAsync(this HulldProcess hulld, string spec) =>
        hulld.Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = spec } }).ResponseAsync;

    public static async Task<FilesystemUsage> ImageFsAsync(this HulldProcess hulld) =>
        Assert.Single((await hulld.Cri.Image.ImageFsInfoAsync(new ImageFsInfoRequest())).ImageFilesystems);

    // ---- the store on disk ----------------------------------------------------------------------

    public static string BlobsDir(this HulldProcess hulld) => Path.Combine(hulld.Root, "content", "blobs");
    public static string IngestDir(this HulldProcess hulld) => Path.Combine(hulld.Root, "content", "ingest");
    public static string OverlayDir(this HulldProcess hulld) => Path.Combine(hulld.Root, "snapshots", "overlayfs");

    /// <summary>Every blob in the content store, as digests.</summary>
    public static IReadOnlyList<string> Blobs(this HulldProcess hulld) =>
        Directory.Exists(hulld.BlobsDir())
            ? Directory.EnumerateFiles(hulld.BlobsDir(), "*", SearchOption.AllDirectories)
                .Select(f => $"{Path.GetFileName(Path.GetDirectoryName(f))}:{Path.GetFileName(f)}").Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>The overlayfs snapshot directories (named by id), oldest first.</summary>
    public static IReadOnlyList<string> SnapshotDirs(this HulldProcess hulld) =>
        Directory.EnumerateDirectories(hulld.OverlayDir())
            .Where(d => long.TryParse(Path.GetFileName(d), out _))
            .OrderBy(d => long.Parse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Whatever is in the snapshotter's directory besides hidden entries: snapshots, new-*, removing-*.</summary>
    public static IReadOnlyList<string> SnapshotEntries(this HulldProcess hulld) =>
        Directory.EnumerateFileSystemEntries(hulld.OverlayDir()).Where(d => !Path.GetFileName(d).StartsWith('.')).ToArray();

    /// <summary>A failed pull left nothing: no image, no blob, no ingest, no snapshot.</summary>
    public static async Task AssertStoreIsEmptyAsync(this HulldProcess hulld)
    {
        Assert.Empty(await hulld.ListImagesAsync());
        Assert.Empty(hulld.Blobs());
        Assert.Empty(Directory.EnumerateFileSystemEntries(hulld.IngestDir()));
        Assert.Empty(hulld.SnapshotEntries());
    }

    // ---- the registry, directly -----------------------------------------------------------------

    private static readonly string[] ManifestTypes = [OciIndex, OciManifest, DockerManifestList, DockerManifest];

    /// <summary>GETs a manifest or index straight from a registry: (media type, digest, raw JSON).</summary>
    public static async Task<(string MediaType, string Digest, JsonElement Json)> RawManifestAsync(string registryHost, string repository, string reference)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{registryHost}/v2/{repository}/manifests/{reference}");
        foreach (var type in ManifestTypes) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        using var response = await client.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"GET manifest {repository}:{reference}: {(int)response.StatusCode}");
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        return (response.Content.Headers.ContentType?.MediaType ?? "", response.Headers.GetValues("Docker-Content-Digest").Single(), json);
    }

    /// <summary>The image manifest of a single-platform test image, with its config and layers.</summary>
    public static async Task<ManifestInfo> ManifestAsync(string registryHost, TestImage image)
    {
        var (_, digest, json) = await RawManifestAsync(registryHost, image.RepositoryPath, image.Tag);
        static BlobRef Ref(JsonElement e) => new(e.GetProperty("mediaType").GetString()!, e.GetProperty("digest").GetString()!, e.GetProperty("size").GetInt64());
        return new ManifestInfo(digest, Ref(json.GetProperty("config")), json.GetProperty("layers").EnumerateArray().Select(Ref).ToArray());
    }

    /// <summary>How many GETs of a blob the proxy forwarded or faulted.</summary>
    public static int GetCount(this FaultyRegistryProxy proxy, string digest) =>
        proxy.Requests.Count(r => r.Method == "GET" && r.IsBlob && r.Path.EndsWith("/" + digest, StringComparison.Ordinal));

    /// <summary>Ranged (206) GETs of a blob in the registry's access log: downloads resumed where they broke off.</summary>
    public static int RangedGets(this RegistryProcess registry, string repository, string digest) =>
        registry.Log.Split('\n').Count(l => l.Contains($"\"GET /v2/{repository}/blobs/{digest} HTTP/1.1\" 206 ", StringComparison.Ordinal));

    /// <summary>Waits (the registry's log arrives through a pipe) until the access log shows <paramref name="expected"/> ranged GETs of the blob.</summary>
    public static async Task AssertRangedGetsAsync(this RegistryProcess registry, string repository, string digest, int expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (registry.RangedGets(repository, digest) != expected && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(expected, registry.RangedGets(repository, digest));
    }

    /// <summary>Picks blob GETs of one digest, for <see cref="FaultyRegistryProxy.Inject"/>.</summary>
    public static Func<ProxiedRequest, bool> GetsOf(string digest) =>
        r => r.Method == "GET" && r.IsBlob && r.Path.EndsWith("/" + digest, StringComparison.Ordinal);

    // ---- files ----------------------------------------------------------------------------------

    /// <summary>lstat of one path: (type as stat's %F, major, minor, uid, gid, mode bits, inode).</summary>
    public sealed record FileStat(string Type, int Major, int Minor, int Uid, int Gid, int Mode, long Inode, int Links);

    public static async Task<FileStat> StatAsync(string path)
    {
        var result = await ProcessRunner.RunAsync("stat", ["-c", "%F|%Hr|%Lr|%u|%g|%a|%i|%h", path], TimeSpan.FromSeconds(10));
        Assert.True(result.ExitCode == 0, $"stat {path}: {result}");
        var f = result.Stdout.Trim().Split('|');
        static int I(string s) => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
        return new FileStat(f[0], I(f[1]), I(f[2]), I(f[3]), I(f[4]), Convert.ToInt32(f[5], 8), long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture), I(f[7]));
    }

    /// <summary>An extended attribute of a file (not following symlinks); null when it has none by that name.</summary>
    public static string? Xattr(string path, string name)
    {
        var buffer = new byte[4096];
        nint n = lgetxattr(path, name, buffer, buffer.Length);
        return n < 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n);
    }

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern nint lgetxattr(string path, string name, byte[] value, nint size);
}
