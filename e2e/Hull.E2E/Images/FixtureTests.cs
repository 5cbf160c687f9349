using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Hull.E2E.Fixtures;

namespace Hull.E2E.Images;

/// <summary>The registry, image and fault-injection fixtures do what the image tests rely on.</summary>
public sealed class FixtureTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    private const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    private const string OciIndex = "application/vnd.oci.image.index.v1+json";
    private static readonly string[] AcceptAll =
    [
        OciIndex, OciManifest,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ];

    [E2EFact("docker-registry")]
    public async Task Registry_answers_the_v2_api_and_leaves_nothing_behind()
    {
        var registry = await RegistryProcess.StartAsync();
        int pid = registry.Pid;
        string dir = registry.Dir;
        try
        {
            Assert.StartsWith("127.0.0.1:", registry.Host);
            using var client = registry.CreateClient();
            using var response = await client.GetAsync("v2/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("registry/2.0", response.Headers.GetValues("Docker-Distribution-Api-Version").Single());
        }
        finally
        {
            await registry.DisposeAsync();
        }
        Assert.False(Directory.Exists(dir), $"{dir} was left behind");
        Assert.False(IsRunning(pid), $"docker-registry {pid} is still running");
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Busybox_is_one_layer_with_the_configured_command_user_database_and_label()
    {
        var inspect = await InspectAsync(pushed.Images.Busybox.Reference);
        Assert.Single(inspect.GetProperty("Layers").EnumerateArray());
        Assert.Equal(pushed.Images.Busybox.Digest, inspect.GetProperty("Digest").GetString());
        Assert.Equal("busybox", inspect.GetProperty("Labels").GetProperty("org.hull.test.image").GetString());
        Assert.Equal("amd64", inspect.GetProperty("Architecture").GetString());

        var config = await ConfigAsync(pushed.Images.Busybox.Reference);
        Assert.Equal(new[] { "sh" }, config.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal("/work", config.GetProperty("WorkingDir").GetString());
        Assert.Contains(config.GetProperty("Env").EnumerateArray(), e => e.GetString()!.StartsWith("PATH=", StringComparison.Ordinal));

        var files = await LayerEntriesAsync(pushed.Images.Busybox, 0);
        Assert.Contains("bin/busybox", files.Keys);
        Assert.Equal("busybox", files["bin/sh"].LinkName);
        Assert.Equal(UnixFileMode.StickyBit, files["tmp"].Mode & UnixFileMode.StickyBit);
        Assert.Equal(1000, files["home/hulltest"].Uid);
        Assert.True(File.Exists(Path.Combine(await TestImages.BuildAsync(), "busybox", "index.json")), "no OCI layout for busybox in the image cache");
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Busybox_has_the_test_users_and_groups()
    {
        var files = await LayerFilesAsync(pushed.Images.Busybox, 0, "etc/passwd", "etc/group");
        Assert.Contains("hulltest:x:1000:1000:", files["etc/passwd"]);
        Assert.Contains("nobody:x:65534:65534:", files["etc/passwd"]);
        Assert.Contains("root:x:0:0:", files["etc/passwd"]);
        Assert.Contains("hullgroup:x:2000:hulltest", files["etc/group"]);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Multilayer_has_whiteouts_an_opaque_dir_a_hard_link_an_xattr_an_owner_setuid_and_symlinks()
    {
        var inspect = await InspectAsync(pushed.Images.Multilayer.Reference);
        Assert.Equal(6, inspect.GetProperty("Layers").GetArrayLength());

        var deleted = await LayerEntriesAsync(pushed.Images.Multilayer, 2);
        Assert.Contains("data/.wh.b.txt", deleted.Keys);
        Assert.Contains("data/.wh.gone", deleted.Keys);

        // umoci writes a whiteout per removed file for a replaced directory, never an opaque one.
        var replaced = await LayerEntriesAsync(pushed.Images.Multilayer, 3);
        Assert.Contains("data/replaced/.wh.old1", replaced.Keys);
        Assert.Contains("data/replaced/new", replaced.Keys);

        var special = await LayerEntriesAsync(pushed.Images.Multilayer, 4);
        Assert.Equal(System.Formats.Tar.TarEntryType.HardLink, special["data/hardlink-to-a"].Type);
        Assert.Equal("data/a.txt", special["data/hardlink-to-a"].LinkName);
        Assert.Equal("hello", special["data/xattr.txt"].Xattrs["user.hull.test"]);
        Assert.Equal((1000, 1000), (special["data/owned"].Uid, special["data/owned"].Gid));
        Assert.Equal(UnixFileMode.SetUser, special["data/suid"].Mode & UnixFileMode.SetUser);
        Assert.Equal("a.txt", special["data/link-to-a"].LinkName);
        Assert.Equal("/data/a.txt", special["data/abs-link"].LinkName);

        var opaque = await LayerEntriesAsync(pushed.Images.Multilayer, 5);
        Assert.Contains("data/opaque/.wh..wh..opq", opaque.Keys);
        Assert.Contains("data/opaque/new", opaque.Keys);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Multiarch_is_an_index_of_amd64_and_arm64_manifests()
    {
        var (mediaType, manifest) = await RawManifestAsync(pushed.Images.Multiarch.Reference);
        Assert.Equal(OciIndex, mediaType);
        var platforms = manifest.GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("platform").GetProperty("architecture").GetString()!).ToArray();
        Assert.Equal(new[] { "amd64", "arm64" }, platforms);

        var arm = await ConfigAsync(pushed.Images.Multiarch.Reference, "--override-arch", "arm64");
        Assert.Contains(arm.GetProperty("Env").EnumerateArray(), e => e.GetString() == "HULL_PLATFORM=linux/arm64");
        var amd = await ConfigAsync(pushed.Images.Multiarch.Reference, "--override-arch", "amd64");
        Assert.Contains(amd.GetProperty("Env").EnumerateArray(), e => e.GetString() == "HULL_PLATFORM=linux/amd64");
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Compression_variants_have_zstd_and_uncompressed_layers_of_the_same_content()
    {
        var (_, zstd) = await RawManifestAsync(pushed.Images.Zstd.Reference);
        Assert.Equal("application/vnd.oci.image.layer.v1.tar+zstd", zstd.GetProperty("layers")[0].GetProperty("mediaType").GetString());
        var (_, plain) = await RawManifestAsync(pushed.Images.Uncompressed.Reference);
        var layer = plain.GetProperty("layers")[0];
        Assert.Equal("application/vnd.oci.image.layer.v1.tar", layer.GetProperty("mediaType").GetString());
        var (_, gzip) = await RawManifestAsync(pushed.Images.Busybox.Reference);
        Assert.Equal("application/vnd.oci.image.layer.v1.tar+gzip", gzip.GetProperty("layers")[0].GetProperty("mediaType").GetString());

        // An uncompressed layer's digest is its diff ID, and all three share one config.
        var config = await ConfigBlobAsync(pushed.Images.Busybox.Reference);
        Assert.Equal(layer.GetProperty("digest").GetString(), config.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString());
        Assert.Equal(gzip.GetProperty("config").GetProperty("digest").GetString(), zstd.GetProperty("config").GetProperty("digest").GetString());
        Assert.Equal(gzip.GetProperty("config").GetProperty("digest").GetString(), plain.GetProperty("config").GetProperty("digest").GetString());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Docker_schema2_and_schema1_variants_are_served_with_their_media_types()
    {
        var (schema2Type, schema2) = await RawManifestAsync(pushed.Images.DockerSchema2.Reference);
        Assert.Equal("application/vnd.docker.distribution.manifest.v2+json", schema2Type);
        Assert.Equal(2, schema2.GetProperty("schemaVersion").GetInt32());

        var (schema1Type, schema1) = await RawManifestAsync(pushed.Images.DockerSchema1.Reference);
        Assert.Equal("application/vnd.docker.distribution.manifest.v1+prettyjws", schema1Type);
        Assert.Equal(1, schema1.GetProperty("schemaVersion").GetInt32());
        Assert.NotEmpty(schema1.GetProperty("signatures").EnumerateArray());
        Assert.Single(schema1.GetProperty("fsLayers").EnumerateArray());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Pushes_keep_the_digests_recorded_at_build_time()
    {
        var built = await TestImages.BuiltDigestsAsync();
        foreach (var name in (string[])["busybox", "multilayer", "zstd", "uncompressed", "multiarch", "docker-schema2"])
            Assert.Equal(built[name], pushed.Images.All[name].Digest);
        using var client = pushed.Registry.CreateClient();
        foreach (var image in pushed.Images.All.Values)
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, $"v2/{image.RepositoryPath}/manifests/{image.Tag}");
            foreach (var type in AcceptAll) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(image.Digest, response.Headers.GetValues("Docker-Content-Digest").Single());
        }
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Basic_auth_registry_refuses_anonymous_and_wrong_credentials_and_accepts_the_user()
    {
        var user = new RegistryCredentials("hull", "s3cret-pass");
        await using var registry = await RegistryProcess.StartAsync(new RegistryOptions { BasicAuth = user });
        var images = await TestImages.PushAsync(registry);

        var anonymous = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{images.Busybox.Reference}");
        Assert.NotEqual(0, anonymous.ExitCode);
        Assert.Contains("unauthorized", anonymous.Stderr, StringComparison.OrdinalIgnoreCase);
        var wrong = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", "--creds", "hull:wrong", $"docker://{images.Busybox.Reference}");
        Assert.NotEqual(0, wrong.ExitCode);
        var right = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", "--creds", user.ToString(), $"docker://{images.Busybox.Reference}");
        Assert.True(right.ExitCode == 0, right.ToString());

        using var client = new HttpClient();
        using var challenge = await client.GetAsync(new Uri(registry.BaseUri, "v2/"));
        Assert.Equal(HttpStatusCode.Unauthorized, challenge.StatusCode);
        Assert.Equal("Basic", challenge.Headers.WwwAuthenticate.Single().Scheme);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Token_auth_registry_sends_clients_to_the_token_server_and_honours_its_tokens()
    {
        var user = new RegistryCredentials("hull", "t0ken-pass");
        await using var registry = await RegistryProcess.StartAsync(new RegistryOptions { TokenAuth = user });
        var images = await TestImages.PushAsync(registry);

        using var client = new HttpClient();
        using var challenge = await client.GetAsync(new Uri(registry.BaseUri, $"v2/{images.Busybox.RepositoryPath}/manifests/latest"));
        Assert.Equal(HttpStatusCode.Unauthorized, challenge.StatusCode);
        var bearer = challenge.Headers.WwwAuthenticate.Single();
        Assert.Equal("Bearer", bearer.Scheme);
        Assert.Contains($"realm=\"{registry.TokenServer!.Realm}\"", bearer.Parameter);
        Assert.Contains("scope=\"repository:hull-test/busybox:pull\"", bearer.Parameter);

        var anonymous = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{images.Busybox.Reference}");
        Assert.NotEqual(0, anonymous.ExitCode);
        var right = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", "--creds", user.ToString(), $"docker://{images.Busybox.Reference}");
        Assert.True(right.ExitCode == 0, right.ToString());
        Assert.Contains(registry.TokenServer.Requests, r => r.Granted && r.Username == "hull" && r.Scopes.Contains("repository:hull-test/busybox:pull"));
        Assert.Contains(registry.TokenServer.Requests, r => !r.Granted && r.Username is null);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Token_auth_with_anonymous_pull_lets_anyone_pull_but_not_push()
    {
        var user = new RegistryCredentials("hull", "t0ken-pass");
        await using var registry = await RegistryProcess.StartAsync(new RegistryOptions { TokenAuth = user, AnonymousPull = true });
        var images = await TestImages.PushAsync(registry);
        var pull = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{images.Busybox.Reference}");
        Assert.True(pull.ExitCode == 0, pull.ToString());
        var push = await SkopeoAsync("copy", "--dest-tls-verify=false", "--src-tls-verify=false",
            $"docker://{images.Busybox.Reference}", $"docker://{registry.Host}/anonymous/busybox:latest");
        Assert.NotEqual(0, push.ExitCode);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Faulty_proxy_passes_through_until_told_to_misbehave()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        var viaProxy = pushed.Images.Multilayer.Reference.Replace(pushed.Registry.Host, proxy.Host, StringComparison.Ordinal);
        var copy = Directory.CreateTempSubdirectory("hull-e2e-proxy-").FullName;
        try
        {
            var ok = await SkopeoAsync("copy", "--src-tls-verify=false", $"docker://{viaProxy}", $"oci:{copy}:latest");
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.Contains(proxy.Requests, r => r.Method == "GET" && r.IsBlob);
            Assert.Equal(0, proxy.FaultsInjected);

            proxy.Inject(RegistryFault.ServerError, FaultyRegistryProxy.ManifestRequests);
            var failed = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{viaProxy}");
            Assert.NotEqual(0, failed.ExitCode);
            Assert.Contains("503", failed.Stderr);

            proxy.Clear();
            var again = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{viaProxy}");
            Assert.True(again.ExitCode == 0, again.ToString());

            // Pushes work through it too: upload Locations point back at the proxy.
            var push = await SkopeoAsync("copy", "--dest-tls-verify=false", $"oci:{copy}:latest", $"docker://{proxy.Host}/via-proxy/multilayer:latest");
            Assert.True(push.ExitCode == 0, push.ToString());
            Assert.Contains(proxy.Requests, r => r.IsBlob && r.Method is "PATCH" or "PUT");
            var direct = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{pushed.Registry.Host}/via-proxy/multilayer:latest");
            Assert.True(direct.ExitCode == 0, direct.ToString());
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Faulty_proxy_corrupts_truncates_resets_hangs_and_fails_blob_downloads()
    {
        await using var proxy = FaultyRegistryProxy.Start(pushed.Registry);
        var (_, manifest) = await RawManifestAsync(pushed.Images.Busybox.Reference);
        var layer = manifest.GetProperty("layers")[0];
        var digest = layer.GetProperty("digest").GetString()!;
        long size = layer.GetProperty("size").GetInt64();
        var blob = new Uri($"http://{proxy.Host}/v2/{pushed.Images.Busybox.RepositoryPath}/blobs/{digest}");
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        // Untouched: right bytes; HEAD keeps its Content-Length.
        Assert.Equal(digest, Sha256(await client.GetByteArrayAsync(blob)));
        using (var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, blob)))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(size, head.Content.Headers.ContentLength);
        }

        proxy.Inject(RegistryFault.Corrupt);
        var corrupt = await client.GetByteArrayAsync(blob);
        Assert.Equal(size, corrupt.Length);
        Assert.NotEqual(digest, Sha256(corrupt));

        proxy.Inject(RegistryFault.Truncate);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetByteArrayAsync(blob));

        // A fresh client: on a pooled connection SocketsHttpHandler would retry the reset request once.
        proxy.Inject(RegistryFault.Reset);
        using (var fresh = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => fresh.GetByteArrayAsync(blob));

        proxy.Inject(RegistryFault.ServerError, times: 2);
        using (var first = await client.GetAsync(blob)) Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        using (var second = await client.GetAsync(blob)) Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        using (var third = await client.GetAsync(blob)) Assert.Equal(HttpStatusCode.OK, third.StatusCode);

        proxy.Inject(RegistryFault.Hang);
        using var shortClient = new HttpClient { Timeout = TimeSpan.FromMilliseconds(500) };
        await Assert.ThrowsAnyAsync<TaskCanceledException>(() => shortClient.GetAsync(blob));

        proxy.BytesPerSecond = 2 * 1024 * 1024;
        proxy.Inject(RegistryFault.Slow);
        var watch = Stopwatch.StartNew();
        Assert.Equal(digest, Sha256(await client.GetByteArrayAsync(blob)));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(300), $"a {size}-byte blob at 2 MiB/s took only {watch.Elapsed}");

        Assert.Equal(7, proxy.FaultsInjected);
        Assert.Contains(proxy.Requests, r => r.Fault == RegistryFault.Hang);
    }

    // ------------------------------------------------------------------------------ helpers

    private static Task<ProcessResult> SkopeoAsync(params string[] args) => ProcessRunner.RunAsync("skopeo", args, TimeSpan.FromSeconds(60));

    private static async Task<JsonElement> InspectAsync(string reference, params string[] extra)
    {
        var result = await SkopeoAsync(["inspect", "--tls-verify=false", .. extra, $"docker://{reference}"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    /// <summary>The image config's "config" object (Cmd, Env, WorkingDir, ...).</summary>
    private static async Task<JsonElement> ConfigAsync(string reference, params string[] extra) =>
        (await ConfigBlobAsync(reference, extra)).GetProperty("config");

    /// <summary>The whole image config blob.</summary>
    private static async Task<JsonElement> ConfigBlobAsync(string reference, params string[] extra)
    {
        var result = await SkopeoAsync(["inspect", "--config", "--raw", "--tls-verify=false", .. extra, $"docker://{reference}"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.Stdout).RootElement.Clone();
    }

    private static async Task<(string MediaType, JsonElement Manifest)> RawManifestAsync(string reference)
    {
        var result = await SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{reference}");
        Assert.True(result.ExitCode == 0, result.ToString());
        var manifest = JsonDocument.Parse(result.Stdout).RootElement.Clone();
        if (manifest.TryGetProperty("mediaType", out var type)) return (type.GetString()!, manifest);
        if (manifest.GetProperty("schemaVersion").GetInt32() == 1)
            return (manifest.TryGetProperty("signatures", out _) ? "application/vnd.docker.distribution.manifest.v1+prettyjws" : "application/vnd.docker.distribution.manifest.v1+json", manifest);
        return (manifest.TryGetProperty("manifests", out _) ? OciIndex : OciManifest, manifest);
    }

    private sealed record Entry(System.Formats.Tar.TarEntryType Type, string LinkName, UnixFileMode Mode, int Uid, int Gid, IReadOnlyDictionary<string, string> Xattrs);

    /// <summary>The entries of one layer of an image (by index in its manifest), fetched from the registry.</summary>
    private async Task<Dictionary<string, Entry>> LayerEntriesAsync(TestImage image, int index)
    {
        var entries = new Dictionary<string, Entry>();
        await ReadLayerAsync(image, index, entry =>
        {
            var xattrs = entry is System.Formats.Tar.PaxTarEntry pax
                ? pax.ExtendedAttributes.Where(a => a.Key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                    .ToDictionary(a => a.Key["SCHILY.xattr.".Length..], a => a.Value)
                : new Dictionary<string, string>();
            entries[entry.Name.TrimEnd('/').TrimStart('.', '/') is { Length: > 0 } n ? n : "."] =
                new Entry(entry.EntryType, entry.LinkName, entry.Mode, entry.Uid, entry.Gid, xattrs);
        });
        return entries;
    }

    private async Task<Dictionary<string, string>> LayerFilesAsync(TestImage image, int index, params string[] names)
    {
        var files = new Dictionary<string, string>();
        await ReadLayerAsync(image, index, entry =>
        {
            var name = entry.Name.TrimStart('.', '/');
            if (names.Contains(name) && entry.DataStream is { } data)
                files[name] = new StreamReader(data).ReadToEnd();
        });
        return files;
    }

    private async Task ReadLayerAsync(TestImage image, int index, Action<System.Formats.Tar.TarEntry> onEntry)
    {
        var (_, manifest) = await RawManifestAsync(image.Reference);
        var layer = manifest.GetProperty("layers")[index];
        using var client = pushed.Registry.CreateClient();
        await using var blob = await client.GetStreamAsync($"v2/{image.RepositoryPath}/blobs/{layer.GetProperty("digest").GetString()}");
        var mediaType = layer.GetProperty("mediaType").GetString()!;
        Stream tar = mediaType.EndsWith("gzip", StringComparison.Ordinal) ? new System.IO.Compression.GZipStream(blob, System.IO.Compression.CompressionMode.Decompress) : blob;
        await using (tar)
        {
            using var reader = new System.Formats.Tar.TarReader(tar);
            while (await reader.GetNextEntryAsync() is { } entry) onEntry(entry);
        }
    }

    private static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static bool IsRunning(int pid) => Directory.Exists($"/proc/{pid}") &&
        !File.ReadAllText($"/proc/{pid}/stat").Split(") ", 2)[1].StartsWith('Z');
}
