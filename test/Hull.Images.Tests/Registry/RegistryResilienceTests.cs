using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Reference;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

/// <summary>
/// Behaviour that a well-behaved registry does not show: failures, hangs, broken bodies, odd answers.
/// Each test runs a fake registry (HttpListener) reached through a hosts.toml <c>server = "http://…"</c>.
/// </summary>
public sealed class RegistryResilienceTests : IDisposable
{
    private const string Repo = "hull/fake";
    private static readonly TestBlob Manifest = TestBlob.Of(MediaTypes.OciManifest, Encoding.UTF8.GetBytes(
        """{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[]}"""));

    private readonly TestDirectory _config = new();
    private readonly ConcurrentQueue<HttpListenerRequest> _seen = new();

    public void Dispose() => _config.Dispose();

    private static RegistryClientOptions Options => new() { RetryDelay = TimeSpan.FromMilliseconds(5), MaxRetryDelay = TimeSpan.FromMilliseconds(50), MaxRetryAttempts = 2 };

    private RegistryClient Client(TestHttpServer server, string extraToml = "", RegistryClientOptions? options = null)
    {
        _config.Write("fake.test/hosts.toml", $"server = \"{server.Url}\"\n{extraToml}");
        return new RegistryClient(new RegistryHosts(_config.Path), options ?? Options);
    }

    private static RegistryRepository Repository(RegistryClient client, string tagOrDigest = "1") =>
        client.Repository(ImageReference.ParseDockerRef(tagOrDigest.Contains(':') ? $"fake.test/{Repo}@{tagOrDigest}" : $"fake.test/{Repo}:{tagOrDigest}"));

    private TestHttpServer Server(Func<HttpListenerContext, int, Task> handler)
    {
        int count = 0;
        return new TestHttpServer(context =>
        {
            _seen.Enqueue(context.Request);
            return handler(context, Interlocked.Increment(ref count));
        });
    }

    private static Task ServeManifest(HttpListenerContext context, TestBlob? manifest = null, string? contentDigest = null)
    {
        manifest ??= Manifest;
        return TestHttpServer.WriteAsync(context.Response, 200, Encoding.UTF8.GetString(manifest.Content), manifest.Descriptor.MediaType,
            ("Docker-Content-Digest", contentDigest ?? manifest.Descriptor.Digest));
    }

    [Fact]
    public async Task Transient_503s_are_retried_until_the_registry_answers()
    {
        await using var server = Server((c, n) => n <= 2
            ? TestHttpServer.WriteAsync(c.Response, 503, """{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}""")
            : ServeManifest(c));
        using var client = Client(server);

        FetchedManifest manifest = await Repository(client).ResolveAsync();
        Assert.Equal(Manifest.Descriptor.Digest, manifest.Digest);
        Assert.Equal(3, server.Requests);
    }

    [Fact]
    public async Task A_registry_that_keeps_failing_is_Unavailable_after_the_retries()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 500, """{"errors":[{"code":"UNKNOWN","message":"storage broken"}]}"""));
        using var client = Client(server);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.Unavailable, e.Kind);
        Assert.Contains("500", e.Message);
        Assert.Contains("UNKNOWN: storage broken", e.Message);
        Assert.Equal(3, server.Requests); // 1 + MaxRetryAttempts
    }

    [Fact]
    public async Task Rate_limiting_is_retried_after_Retry_After()
    {
        await using var server = Server((c, n) => n == 1
            ? TestHttpServer.WriteAsync(c.Response, 429, """{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}""", headers: ("Retry-After", "1"))
            : ServeManifest(c));
        using var client = Client(server, options: Options with { MaxRetryDelay = TimeSpan.FromSeconds(5) });

        var clock = Stopwatch.StartNew();
        await Repository(client).ResolveAsync();
        Assert.Equal(2, server.Requests);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"retried after {clock.Elapsed}, before Retry-After");
    }

    [Fact]
    public async Task Rate_limiting_that_persists_is_ResourceExhausted()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 429, """{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"""));
        using var client = Client(server);
        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.ResourceExhausted, e.Kind);
    }

    [Fact]
    public async Task Client_errors_are_not_retried_and_carry_the_registrys_message()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 403, """{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"""));
        using var client = Client(server);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Contains("denied access to image \"fake.test/hull/fake:1\"", e.Message);
        Assert.Contains("DENIED: requested access to the resource is denied", e.Message);
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task A_hanging_registry_is_abandoned_when_the_caller_cancels()
    {
        await using var server = Server(async (c, _) => await Task.Delay(TimeSpan.FromSeconds(30)));
        using var client = Client(server);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Repository(client).ResolveAsync(cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(1, server.Requests); // cancellation is not a transient failure
    }

    [Fact]
    public async Task A_blob_body_that_stalls_is_abandoned_when_the_caller_cancels()
    {
        byte[] content = new byte[10_000];
        await using var server = Server(async (c, _) =>
        {
            c.Response.StatusCode = 200;
            c.Response.ContentLength64 = content.Length;
            await c.Response.OutputStream.WriteAsync(content.AsMemory(0, 1000));
            await c.Response.OutputStream.FlushAsync();
            await Task.Delay(TimeSpan.FromSeconds(30));
        });
        using var client = Client(server);
        var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256(content), content.Length);

        await using Stream stream = await Repository(client).FetchBlobAsync(blob);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.CopyToAsync(Stream.Null, cts.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_registry_that_ignores_Range_has_the_offset_skipped()
    {
        byte[] content = Enumerable.Range(0, 50_000).Select(i => (byte)i).ToArray();
        await using var server = Server(async (c, _) =>
        {
            c.Response.StatusCode = 200; // whatever Range said
            c.Response.ContentLength64 = content.Length;
            await c.Response.OutputStream.WriteAsync(content);
            c.Response.Close();
        });
        using var client = Client(server);
        var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256(content), content.Length);

        await using Stream stream = await Repository(client).FetchBlobAsync(blob, 12_345);
        Assert.Equal(content[12_345..], await RegistryClientTests.ReadAllAsync(stream));
        Assert.Equal("bytes=12345-", Assert.Single(_seen).Headers["Range"]);
    }

    [Fact]
    public async Task A_connection_that_breaks_mid_body_is_resumed_from_where_it_broke()
    {
        byte[] content = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();
        const int brokenAt = 70_000;
        await using var server = Server(async (c, n) =>
        {
            if (n == 1)
            {
                c.Response.StatusCode = 200;
                c.Response.ContentLength64 = content.Length;
                await c.Response.OutputStream.WriteAsync(content.AsMemory(0, brokenAt));
                await c.Response.OutputStream.FlushAsync();
                c.Response.Abort();
                return;
            }
            long from = long.Parse(c.Request.Headers["Range"]!["bytes=".Length..^1]);
            c.Response.StatusCode = 206;
            c.Response.AddHeader("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}");
            c.Response.ContentLength64 = content.Length - from;
            await c.Response.OutputStream.WriteAsync(content.AsMemory((int)from));
            c.Response.Close();
        });
        using var client = Client(server);
        var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256(content), content.Length);
        var progress = new RegistryClientTests.RecordingProgress();

        await using Stream stream = await Repository(client).FetchBlobAsync(blob, 0, progress);
        Assert.Equal(content, await RegistryClientTests.ReadAllAsync(stream));
        Assert.Equal(content.Length, progress.Last);
        Assert.Equal(2, server.Requests);
        Assert.Equal($"bytes={brokenAt}-", _seen.Last().Headers["Range"]);
    }

    [Fact]
    public async Task A_body_that_ends_early_without_resumes_left_is_an_error_naming_the_blob()
    {
        byte[] content = new byte[1000];
        await using var server = Server(async (c, _) =>
        {
            c.Response.StatusCode = 200;
            c.Response.ContentLength64 = 500; // the registry claims and sends less than the descriptor says
            await c.Response.OutputStream.WriteAsync(content.AsMemory(0, 500));
            c.Response.Close();
        });
        using var client = Client(server, options: Options with { MaxBlobResumes = 0 });
        var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256(content), content.Length);

        await using Stream stream = await Repository(client).FetchBlobAsync(blob);
        var e = await Assert.ThrowsAsync<IOException>(() => stream.CopyToAsync(Stream.Null));
        Assert.Contains(blob.Digest, e.Message);
        Assert.Contains("500 of 1000", e.Message);
    }

    [Fact]
    public async Task A_partial_answer_at_the_wrong_offset_is_refused()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 206, "xxxx", "application/octet-stream", ("Content-Range", "bytes 0-3/10")));
        using var client = Client(server);
        var blob = new Descriptor(MediaTypes.OciLayerGzip, Digests.Sha256("0123456789"u8), 10);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).FetchBlobAsync(blob, 6));
        Assert.Contains("range", e.Message);
    }

    [Fact]
    public async Task A_token_response_larger_than_Hull_reads_is_refused_naming_the_token_server()
    {
        TestHttpServer? self = null;
        await using var server = Server(async (c, _) =>
        {
            if (c.Request.Url!.AbsolutePath == "/token")
            {
                // Streamed without a Content-Length, so only counting while reading can stop it.
                c.Response.StatusCode = 200;
                c.Response.SendChunked = true;
                await c.Response.OutputStream.WriteAsync("{\"token\":\""u8.ToArray());
                var filler = new byte[64 * 1024];
                Array.Fill(filler, (byte)'a');
                for (int i = 0; i < 40; i++) await c.Response.OutputStream.WriteAsync(filler);
                await c.Response.OutputStream.WriteAsync("\"}"u8.ToArray());
                c.Response.Close();
                return;
            }
            if (c.Request.Headers["Authorization"] is null)
            {
                await TestHttpServer.WriteAsync(c.Response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}""",
                    headers: ("WWW-Authenticate", $"Bearer realm=\"{self!.Url}/token\",service=\"fake\""));
                return;
            }
            await ServeManifest(c);
        });
        self = server;
        using var client = Client(server);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"{server.Url}/token", e.Message);
        Assert.Contains("larger than 1048576 bytes", e.Message);
    }

    [Fact]
    public async Task A_schema1_manifest_is_refused_so_the_caller_can_record_the_deprecation()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 200,
            """{"schemaVersion":1,"name":"hull/fake","tag":"1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}""",
            MediaTypes.DockerSchema1Signed));
        using var client = Client(server);

        var e = await Assert.ThrowsAsync<Schema1ImageException>(() => Repository(client).ResolveAsync());
        Assert.Equal("image \"fake.test/hull/fake:1\" uses Docker schema 1, which Hull does not pull", e.Message);
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(Hull.Core.Deprecations.DeprecationIds.PullSchema1Image, e.DeprecationId);
    }

    [Fact]
    public async Task A_Docker_Content_Digest_that_does_not_match_the_body_is_refused()
    {
        await using var server = Server((c, _) => ServeManifest(c, contentDigest: Digests.Sha256("something else"u8)));
        using var client = Client(server);
        var e = await Assert.ThrowsAsync<HullException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("Docker-Content-Digest", e.Message);
    }

    [Fact]
    public async Task A_manifest_fetched_by_digest_must_hash_to_it()
    {
        await using var server = Server((c, _) => ServeManifest(c, contentDigest: "garbage"));
        using var client = Client(server);
        string wanted = Digests.Sha256("what we asked for"u8);
        var e = await Assert.ThrowsAsync<HullException>(() => Repository(client, wanted).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains(wanted, e.Message);

        FetchedManifest ok = await Repository(client, Manifest.Descriptor.Digest).ResolveAsync();
        Assert.Equal(Manifest.Descriptor.Digest, ok.Digest); // an invalid Docker-Content-Digest is ignored
    }

    [Fact]
    public async Task Requests_carry_the_hosts_toml_headers_the_accept_list_and_the_namespace()
    {
        await using var server = Server((c, _) => ServeManifest(c));
        using var client = Client(server, "[header]\n  x-hull-test = [\"a\", \"b\"]\n");

        await Repository(client).ResolveAsync();
        HttpListenerRequest request = Assert.Single(_seen);
        Assert.Equal("a,b", request.Headers["x-hull-test"]?.Replace(" ", ""));
        Assert.Equal("/v2/hull/fake/manifests/1", request.Url!.AbsolutePath);
        Assert.Equal("fake.test", request.QueryString["ns"]); // the server is not the namespace itself
        Assert.Contains(MediaTypes.OciIndex, request.Headers["Accept"]);
        Assert.Contains(MediaTypes.DockerManifest, request.Headers["Accept"]);
        Assert.StartsWith("hull/", request.UserAgent);
    }

    [Fact]
    public async Task Bearer_challenge_gets_a_token_and_a_refused_token_is_replaced_once()
    {
        var issued = new ConcurrentQueue<string>();
        TestHttpServer? self = null;
        await using var server = Server(async (c, _) =>
        {
            string path = c.Request.Url!.AbsolutePath;
            if (path == "/token")
            {
                Assert.Equal("fake-service", c.Request.QueryString["service"]);
                Assert.Equal($"repository:{Repo}:pull", c.Request.QueryString["scope"]);
                string token = "t" + (issued.Count + 1);
                issued.Enqueue(token);
                await TestHttpServer.WriteAsync(c.Response, 200, $$"""{"token":"{{token}}","expires_in":300}""");
                return;
            }
            // The registry accepts only the newest token, so the first one is "revoked" once a second exists.
            string? auth = c.Request.Headers["Authorization"];
            bool fresh = auth is not null && issued.Count >= 2 && auth == "Bearer " + issued.Last();
            if (!fresh)
            {
                await TestHttpServer.WriteAsync(c.Response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}""",
                    headers: ("WWW-Authenticate", $"Bearer realm=\"{self!.Url}/token\",service=\"fake-service\",scope=\"repository:{Repo}:pull\""));
                return;
            }
            await ServeManifest(c);
        });
        self = server;
        using var client = Client(server);

        // Anonymous → 401 → token t1 → 401 (not the newest... there is only one) → fails after one re-auth.
        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Equal(["t1"], issued);

        // Now t1 is cached; the registry refuses it, the client drops it, fetches t2, and succeeds.
        FetchedManifest manifest = await Repository(client).ResolveAsync();
        Assert.Equal(Manifest.Descriptor.Digest, manifest.Digest);
        Assert.Equal(["t1", "t2"], issued);
    }

    [Fact]
    public async Task An_unreachable_registry_is_Unavailable_naming_it()
    {
        int dead = RegistryProcess.FreePort();
        _config.Write("fake.test/hosts.toml", $"server = \"http://127.0.0.1:{dead}\"");
        using var client = new RegistryClient(new RegistryHosts(_config.Path), Options);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
        Assert.Equal(ErrorKind.Unavailable, e.Kind);
        Assert.Contains($"cannot reach registry \"127.0.0.1:{dead}\"", e.Message);
    }

    [Fact]
    public async Task Dial_timeout_bounds_each_connection_attempt()
    {
        // A listener that never accepts, with its backlog filled: further connects hang in SYN retries.
        using var blackHole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        blackHole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackHole.Listen(1);
        int port = ((IPEndPoint)blackHole.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var connectTimeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
                try
                {
                    await filler.ConnectAsync(IPAddress.Loopback, port, connectTimeout.Token);
                }
                catch (OperationCanceledException)
                {
                    break; // the backlog is full
                }
            }

            _config.Write("fake.test/hosts.toml", $"server = \"http://127.0.0.1:{port}\"\ndial_timeout = \"300ms\"");
            using var client = new RegistryClient(new RegistryHosts(_config.Path), Options with { MaxRetryAttempts = 1 });

            var clock = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<RegistryException>(() => Repository(client).ResolveAsync());
            Assert.Equal(ErrorKind.Unavailable, e.Kind);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}"); // the default dial timeout is 30s
            Assert.Contains("ConnectTimeout", e.Message);
        }
        finally
        {
            foreach (Socket filler in fillers) filler.Dispose();
        }
    }

    [Fact]
    public async Task A_manifest_larger_than_the_limit_is_refused()
    {
        await using var server = Server((c, _) => TestHttpServer.WriteAsync(c.Response, 200, "{" + new string(' ', RegistryRepository.MaxManifestSize) + "}", MediaTypes.OciManifest));
        using var client = Client(server);
        var e = await Assert.ThrowsAsync<HullException>(() => Repository(client).ResolveAsync());
        Assert.Contains("larger than", e.Message);
    }
}
