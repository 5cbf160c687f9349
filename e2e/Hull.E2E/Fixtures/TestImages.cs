using System.Security.Cryptography;

namespace Hull.E2E.Fixtures;

/// <summary>One test image pushed to a registry.</summary>
/// <param name="Name">The image's name in hack/build-test-images.sh (busybox, multilayer, ...).</param>
/// <param name="Reference">HOST:PORT/hull-test/NAME:latest.</param>
/// <param name="Digest">The manifest (or index) digest the registry serves for it.</param>
public sealed record TestImage(string Name, string Reference, string Digest)
{
    /// <summary>HOST:PORT/hull-test/NAME, the reference without its tag.</summary>
    public string Repository => Reference[..Reference.LastIndexOf(':')];
    /// <summary>hull-test/NAME, the repository as the registry API names it.</summary>
    public string RepositoryPath => Repository[(Repository.IndexOf('/') + 1)..];
    public string Tag => Reference[(Reference.LastIndexOf(':') + 1)..];
    /// <summary>HOST:PORT/hull-test/NAME@sha256:...</summary>
    public string DigestReference => $"{Repository}@{Digest}";
    public override string ToString() => Reference;
}

/// <summary>
/// The images hack/build-test-images.sh builds (once per machine and script version, cached under
/// /var/tmp/hull-test-images/&lt;script hash&gt; or $HULL_TEST_IMAGES_DIR), pushed into one
/// <see cref="RegistryProcess"/>. See the script's header for what each image contains.
/// </summary>
public sealed class TestImages
{
    public static string Script => Path.Combine(Repo.Root, "hack", "build-test-images.sh");
    public static readonly string[] RequiredTools = [RegistryProcess.Binary, "skopeo", "umoci"];

    private static readonly SemaphoreSlim BuildGate = new(1, 1);
    private static bool _built, _builtBig;

    private TestImages(IReadOnlyDictionary<string, TestImage> images) => All = images;

    public IReadOnlyDictionary<string, TestImage> All { get; }

    /// <summary>busybox-static on one gzip layer, users root/nobody/hulltest(1000), group hullgroup(2000), Cmd ["sh"], WorkingDir /work.</summary>
    public TestImage Busybox => All["busybox"];
    /// <summary>busybox + 5 layers under /data: adds, whiteouts, a replaced dir, hard link, xattr, owner, setuid, symlinks, an opaque whiteout.</summary>
    public TestImage Multilayer => All["multilayer"];
    /// <summary>busybox with its layer as application/vnd.oci.image.layer.v1.tar+zstd.</summary>
    public TestImage Zstd => All["zstd"];
    /// <summary>busybox with its layer as application/vnd.oci.image.layer.v1.tar.</summary>
    public TestImage Uncompressed => All["uncompressed"];
    /// <summary>An OCI index: linux/amd64 and linux/arm64/v8 (Env HULL_PLATFORM tells which was pulled).</summary>
    public TestImage Multiarch => All["multiarch"];
    /// <summary>busybox as application/vnd.docker.distribution.manifest.v2+json.</summary>
    public TestImage DockerSchema2 => All["docker-schema2"];
    /// <summary>busybox as a signed Docker schema 1 manifest; only where the registry accepts schema 1 (<see cref="RegistryOptions.Schema1"/>).</summary>
    public TestImage DockerSchema1 => All.TryGetValue("docker-schema1", out var image) ? image
        : throw new InvalidOperationException("the registry refused the Docker schema 1 image (RegistryOptions.Schema1 is off)");
    /// <summary>busybox's layer as a pause image: Entrypoint ["/bin/sleep"], Cmd ["infinity"], User 65534:65534 (for pinned_images.sandbox).</summary>
    public TestImage Pause => All["pause"];
    /// <summary>busybox + HULL_BIG_IMAGE_MB (200) MiB of random data in 4 layers; only after PushAsync(big: true).</summary>
    public TestImage Big => All.TryGetValue("big", out var image) ? image
        : throw new InvalidOperationException("the big image was not pushed; use TestImages.PushAsync(registry, big: true)");

    /// <summary>The directory the images are built in: $HULL_TEST_IMAGES_DIR, or one per version of the build script.</summary>
    public static string CacheDir { get; } = Environment.GetEnvironmentVariable("HULL_TEST_IMAGES_DIR") is { Length: > 0 } dir
        ? dir
        : Path.Combine("/var/tmp/hull-test-images", ScriptHash()[..16]);

    /// <summary>Builds the images unless they are cached; returns <see cref="CacheDir"/>.</summary>
    public static async Task<string> BuildAsync(bool big = false, CancellationToken cancellationToken = default)
    {
        await BuildGate.WaitAsync(cancellationToken);
        try
        {
            if (_built && (!big || _builtBig)) return CacheDir;
            var args = new List<string> { Script };
            if (big) args.Add("--big");
            args.Add(CacheDir);
            var result = await ProcessRunner.RunAsync("bash", args, TimeSpan.FromMinutes(big ? 10 : 3));
            if (result.ExitCode != 0) throw new InvalidOperationException($"{Script} failed: {result}");
            _built = true;
            _builtBig |= big;
            return CacheDir;
        }
        finally
        {
            BuildGate.Release();
        }
    }

    /// <summary>Builds (if needed) and pushes every image to <paramref name="registry"/> as hull-test/NAME:latest.</summary>
    public static async Task<TestImages> PushAsync(RegistryProcess registry, bool big = false, CancellationToken cancellationToken = default)
    {
        var dir = await BuildAsync(big, cancellationToken);
        var args = new List<string> { Script };
        if (big) args.Add("--big");
        args.AddRange(["--push", registry.Host]);
        if (registry.Credentials is { } credentials) args.AddRange(["--creds", credentials.ToString()]);
        args.Add(dir);
        var result = await ProcessRunner.RunAsync("bash", args, TimeSpan.FromMinutes(big ? 10 : 3));
        if (result.ExitCode != 0) throw new InvalidOperationException($"{Script} --push {registry.Host} failed: {result}\nregistry log:\n{registry.Log}");
        var images = new Dictionary<string, TestImage>();
        foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(' ');
            if (fields.Length != 3 || !fields[2].StartsWith("sha256:", StringComparison.Ordinal))
                throw new InvalidOperationException($"unexpected line from {Script} --push: {line}");
            images[fields[0]] = new TestImage(fields[0], fields[1], fields[2]);
        }
        foreach (var name in (string[])["busybox", "multilayer", "zstd", "uncompressed", "multiarch", "docker-schema2"])
            if (!images.ContainsKey(name)) throw new InvalidOperationException($"{Script} --push did not push {name}: {result}");
        return new TestImages(images);
    }

    /// <summary>The digests recorded at build time ("digests" in <see cref="CacheDir"/>); pushes keep them, except schema 1.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> BuiltDigestsAsync(CancellationToken cancellationToken = default)
    {
        var dir = await BuildAsync(cancellationToken: cancellationToken);
        return (await File.ReadAllLinesAsync(Path.Combine(dir, "digests"), cancellationToken))
            .Select(l => l.Split(' ', 2)).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1]);
    }

    private static string ScriptHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(Script));
        var lib = Path.Combine(Repo.Root, "hack", "lib");
        if (Directory.Exists(lib))
            foreach (var file in Directory.EnumerateFiles(lib, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                sha.AppendData(File.ReadAllBytes(file));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}

/// <summary>
/// A class fixture: one <see cref="RegistryProcess"/> with every test image pushed, shared by a
/// test class's tests (which must not change what is in it). Where the tests would be skipped for
/// missing prerequisites it starts nothing.
/// </summary>
public sealed class PushedTestImages : IAsyncLifetime
{
    private RegistryProcess? _registry;
    private TestImages? _images;

    public RegistryProcess Registry => _registry ?? throw new InvalidOperationException("the registry was not started (missing prerequisites?)");
    public TestImages Images => _images ?? throw new InvalidOperationException("the test images were not pushed (missing prerequisites?)");

    public async Task InitializeAsync()
    {
        // xunit builds class fixtures even when every test is skipped.
        if (Prerequisites.Missing(TestImages.RequiredTools) is not null && !Prerequisites.Required) return;
        _registry = await RegistryProcess.StartAsync();
        try
        {
            _images = await TestImages.PushAsync(_registry);
        }
        catch
        {
            await _registry.DisposeAsync();
            _registry = null;
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_registry is not null) await _registry.DisposeAsync();
    }
}
