using System.Net;
using System.Text;
using Hull.Core;
using Hull.Images.Reference;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

/// <summary>docker-registry with htpasswd (Basic) auth.</summary>
public sealed class BasicAuthRegistryFixture : IAsyncLifetime
{
    private readonly TestDirectory _dir = new();

    public RegistryProcess Registry { get; private set; } = null!;

    public TestImage Image { get; } = TestImage.Create();

    public ImageReference Reference => ImageReference.ParseDockerRef($"{Registry.Host}/hull/private:1");

    public static RegistryCredentials Good => new(RegistryProcess.User, RegistryProcess.Password);

    public async Task InitializeAsync()
    {
        if (!RegistryProcess.IsAvailable) return;
        string htpasswd = _dir.Write("htpasswd", RegistryProcess.HtpasswdLine + "\n");
        Registry = await RegistryProcess.StartAsync(new RegistryProcessOptions { AuthYaml = $"  htpasswd:\n    realm: hull-test\n    path: {htpasswd}" });
        using var client = new RegistryClient(new RegistryHosts(), PlainRegistryFixture.FastRetries);
        await Image.PushAsync(client.Repository(Reference, Good), "1");
    }

    public async Task DisposeAsync()
    {
        if (Registry is not null) await Registry.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class RegistryBasicAuthTests(BasicAuthRegistryFixture fixture) : IClassFixture<BasicAuthRegistryFixture>, IDisposable
{
    private readonly RegistryClient _client = new(new RegistryHosts(), PlainRegistryFixture.FastRetries);

    public void Dispose() => _client.Dispose();

    [RegistryFact]
    public async Task Right_credentials_pull_manifests_and_blobs()
    {
        RegistryRepository repo = _client.Repository(fixture.Reference, BasicAuthRegistryFixture.Good);
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await repo.ResolveAsync()).Digest);
        await using Stream blob = await repo.FetchBlobAsync(fixture.Image.Layer.Descriptor, 1000);
        Assert.Equal(fixture.Image.Layer.Content[1000..], await RegistryClientTests.ReadAllAsync(blob));
    }

    [RegistryFact]
    public async Task Credentials_from_the_base64_auth_field_work()
    {
        string auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{RegistryProcess.User}:{RegistryProcess.Password}"));
        RegistryCredentials credentials = RegistryCredentials.FromAuthConfig(null, null, auth, null, null, null)!;
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await _client.Repository(fixture.Reference, credentials).ResolveAsync()).Digest);
    }

    [RegistryFact]
    public async Task A_wrong_password_is_a_clear_FailedPrecondition()
    {
        var wrong = new RegistryCredentials(RegistryProcess.User, "pw-9f8e7d");
        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.Repository(fixture.Reference, wrong).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains($"registry \"{fixture.Registry.Host}\" refused the given credentials for image \"{fixture.Reference}\"", e.Message);
        Assert.Contains("401", e.Message);
        Assert.DoesNotContain("pw-9f8e7d", e.Message); // the password is never echoed
    }

    [RegistryFact]
    public async Task Anonymous_access_is_refused_with_a_message_that_says_so()
    {
        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.Repository(fixture.Reference).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("refused anonymous access", e.Message);
        Assert.Contains("UNAUTHORIZED", e.Message);
    }

    [RegistryFact]
    public async Task Credentials_for_another_server_are_not_sent()
    {
        var elsewhere = BasicAuthRegistryFixture.Good with { ServerAddress = "https://other.example.com" };
        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.Repository(fixture.Reference, elsewhere).ResolveAsync());
        Assert.Contains("anonymous access", e.Message);

        var here = BasicAuthRegistryFixture.Good with { ServerAddress = fixture.Registry.Host };
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await _client.Repository(fixture.Reference, here).ResolveAsync()).Digest);
    }

    [RegistryFact]
    public async Task Ping_checks_credentials()
    {
        Assert.Equal(fixture.Registry.Host, (await _client.PingAsync(fixture.Registry.Host, BasicAuthRegistryFixture.Good)).Host);
        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.PingAsync(fixture.Registry.Host, new RegistryCredentials("hull", "nope")));
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
    }
}

/// <summary>docker-registry with token auth against a <see cref="TokenServer"/>.</summary>
public sealed class TokenAuthRegistryFixture : IAsyncLifetime
{
    private readonly TestDirectory _dir = new();

    public TokenServer Tokens { get; private set; } = null!;

    public RegistryProcess Registry { get; private set; } = null!;

    public TestImage Image { get; } = TestImage.Create();

    public ImageReference Private => ImageReference.ParseDockerRef($"{Registry.Host}/hull/private:1");

    public ImageReference Public => ImageReference.ParseDockerRef($"{Registry.Host}/public/app:1");

    public async Task InitializeAsync()
    {
        if (!RegistryProcess.IsAvailable) return;
        Tokens = new TokenServer(_dir);
        Registry = await RegistryProcess.StartAsync(new RegistryProcessOptions { AuthYaml = Tokens.AuthYaml });
        using var client = new RegistryClient(new RegistryHosts(), PlainRegistryFixture.FastRetries);
        await Image.PushAsync(client.Repository(Private, BasicAuthRegistryFixture.Good), "1");
        await Image.PushAsync(client.Repository(Public, BasicAuthRegistryFixture.Good), "1");
    }

    public async Task DisposeAsync()
    {
        if (Registry is not null) await Registry.DisposeAsync();
        if (Tokens is not null) await Tokens.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class RegistryTokenAuthTests(TokenAuthRegistryFixture fixture) : IClassFixture<TokenAuthRegistryFixture>, IDisposable
{
    private readonly RegistryClient _client = new(new RegistryHosts(), PlainRegistryFixture.FastRetries);

    public void Dispose() => _client.Dispose();

    private List<(string Method, string Grant, string Scopes)> TokenRequestsSince(int before) => fixture.Tokens.Requests.Skip(before).ToList();

    [RegistryFact]
    public async Task Anonymous_pull_of_a_public_repository_gets_a_token_by_GET()
    {
        int before = fixture.Tokens.Requests.Count;
        FetchedManifest manifest = await _client.Repository(fixture.Public).ResolveAsync();
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, manifest.Digest);

        var request = Assert.Single(TokenRequestsSince(before));
        Assert.Equal(("GET", "anonymous", "repository:public/app:pull"), request);
    }

    [RegistryFact]
    public async Task Anonymous_pull_of_a_private_repository_is_refused()
    {
        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.Repository(fixture.Private).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        Assert.Contains("anonymous access", e.Message);
    }

    [RegistryFact]
    public async Task Username_and_password_are_exchanged_by_OAuth_POST_and_the_token_is_reused()
    {
        int before = fixture.Tokens.Requests.Count;
        RegistryRepository repo = _client.Repository(fixture.Private, BasicAuthRegistryFixture.Good);
        FetchedManifest index = await repo.ResolveAsync();
        foreach (TestPlatformImage image in fixture.Image.Platforms)
        {
            await repo.FetchManifestAsync(image.Manifest.Descriptor.Digest);
            await using Stream config = await repo.FetchBlobAsync(image.Config.Descriptor);
            Assert.Equal(image.Config.Content, await RegistryClientTests.ReadAllAsync(config));
        }

        Assert.Equal(fixture.Image.Index.Descriptor.Digest, index.Digest);
        var request = Assert.Single(TokenRequestsSince(before)); // one token for the whole pull
        Assert.Equal(("POST", "password", "repository:hull/private:pull"), request);
    }

    [RegistryFact]
    public async Task An_identity_token_is_exchanged_as_an_OAuth_refresh_token()
    {
        int before = fixture.Tokens.Requests.Count;
        var credentials = RegistryCredentials.FromAuthConfig(null, null, null, null, TokenServer.RefreshToken, null);
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await _client.Repository(fixture.Private, credentials).ResolveAsync()).Digest);
        Assert.Equal("refresh_token", Assert.Single(TokenRequestsSince(before)).Grant);
    }

    [RegistryFact]
    public async Task A_registry_token_is_sent_as_it_is_without_asking_the_token_server()
    {
        int before = fixture.Tokens.Requests.Count;
        string token = fixture.Tokens.Mint("kubelet", ("hull/private", ["pull"]));
        var credentials = RegistryCredentials.FromAuthConfig(null, null, null, null, null, token);
        Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await _client.Repository(fixture.Private, credentials).ResolveAsync()).Digest);
        Assert.Empty(TokenRequestsSince(before));

        string useless = fixture.Tokens.Mint("kubelet", ("someone/else", ["pull"]));
        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            _client.Repository(fixture.Private, new RegistryCredentials(RegistryToken: useless)).ResolveAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
    }

    [RegistryFact]
    public async Task A_wrong_password_fails_at_the_token_server_with_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            _client.Repository(fixture.Private, new RegistryCredentials(RegistryProcess.User, "wrong")).ResolveAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"registry token server \"{fixture.Tokens.Realm}\" refused the given credentials", e.Message);
        Assert.Contains("invalid credentials", e.Message);
    }

    [RegistryFact]
    public async Task Push_asks_for_pull_and_push_scope()
    {
        int before = fixture.Tokens.Requests.Count;
        RegistryRepository repo = _client.Repository(ImageReference.ParseDockerRef($"{fixture.Registry.Host}/hull/pushed:1"), BasicAuthRegistryFixture.Good);
        TestBlob blob = TestBlob.Of("application/octet-stream", "token push"u8.ToArray());
        Assert.True(await repo.PushBlobAsync(blob.Descriptor, new MemoryStream(blob.Content)));
        Assert.Contains(TokenRequestsSince(before), r => r.Scopes == "repository:hull/pushed:pull,push");
    }

    [RegistryFact]
    public async Task Ping_with_credentials_gets_a_token_without_scope()
    {
        RegistryHost host = await _client.PingAsync(fixture.Registry.Host, BasicAuthRegistryFixture.Good);
        Assert.Equal(fixture.Registry.Host, host.Host);
    }
}
