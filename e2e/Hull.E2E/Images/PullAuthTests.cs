using System.Text;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Images;

/// <summary>
/// A class fixture: a Basic-auth registry and a token-auth registry, each holding busybox (copied from the
/// built OCI layout with skopeo, so only one image is pushed). Starts nothing where the tests would skip.
/// </summary>
public sealed class AuthRegistries : IAsyncLifetime
{
    public static readonly RegistryCredentials User = new("hull", "s3cret-pass");
    private RegistryProcess? _basic, _token;

    public RegistryProcess Basic => _basic ?? throw new InvalidOperationException("the registries were not started (missing prerequisites?)");
    public RegistryProcess Token => _token ?? throw new InvalidOperationException("the registries were not started (missing prerequisites?)");

    public static string Busybox(RegistryProcess registry) => registry.Reference("hull-test/busybox");

    public async Task InitializeAsync()
    {
        if (Prerequisites.Missing(TestImages.RequiredTools) is not null && !Prerequisites.Required) return;
        var layout = Path.Combine(await TestImages.BuildAsync(), "busybox");
        var starting = new[]
        {
            RegistryProcess.StartAsync(new RegistryOptions { BasicAuth = User }),
            RegistryProcess.StartAsync(new RegistryOptions { TokenAuth = User }),
        };
        try
        {
            var started = await Task.WhenAll(starting);
            (_basic, _token) = (started[0], started[1]);
            foreach (var registry in started)
            {
                var copy = await ProcessRunner.RunAsync("skopeo", ["copy", "-q", "--dest-tls-verify=false", "--dest-creds", User.ToString(),
                    $"oci:{layout}:latest", $"docker://{Busybox(registry)}"], TimeSpan.FromSeconds(60));
                if (copy.ExitCode != 0) throw new InvalidOperationException($"skopeo copy to {registry.Host} failed: {copy}\nregistry log:\n{registry.Log}");
            }
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var registry in new[] { _basic, _token })
            if (registry is not null) await registry.DisposeAsync();
    }
}

/// <summary>Registry credentials from the CRI AuthConfig, against registries that demand them.</summary>
public sealed class PullAuthTests(AuthRegistries registries) : IClassFixture<AuthRegistries>
{
    private static readonly RegistryCredentials User = AuthRegistries.User;

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Basic_auth_registry_without_or_with_wrong_credentials_fails_with_FailedPrecondition_and_stores_nothing()
    {
        await using var hulld = await PullTests.StartHulldForAsync(registries.Basic);
        string image = AuthRegistries.Busybox(registries.Basic);

        var anonymous = await hulld.PullFailsAsync(image);
        anonymous.AssertCode(StatusCode.FailedPrecondition);
        Assert.Contains($"\"{image}\"", anonymous.Status.Detail);
        Assert.Contains("anonymous", anonymous.Status.Detail);
        Assert.Contains("401", anonymous.Status.Detail);
        await hulld.AssertStoreIsEmptyAsync();

        var wrong = await hulld.PullFailsAsync(image, new AuthConfig { Username = User.Username, Password = "not-the-password" });
        wrong.AssertCode(StatusCode.FailedPrecondition);
        Assert.Contains("refused the given credentials", wrong.Status.Detail);
        Assert.DoesNotContain("not-the-password", wrong.Status.Detail);
        await hulld.AssertStoreIsEmptyAsync();
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Basic_auth_registry_accepts_username_and_password()
    {
        await using var hulld = await PullTests.StartHulldForAsync(registries.Basic);
        string image = AuthRegistries.Busybox(registries.Basic);
        string id = await hulld.PullAsync(image, new AuthConfig { Username = User.Username, Password = User.Password });
        Assert.Equal(id, (await hulld.StatusAsync(image))?.Id);
        Assert.Single(hulld.SnapshotDirs());
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Basic_auth_registry_accepts_the_base64_auth_field()
    {
        await using var hulld = await PullTests.StartHulldForAsync(registries.Basic);
        string image = AuthRegistries.Busybox(registries.Basic);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes(User.ToString()));
        string id = await hulld.PullAsync(image, new AuthConfig { Auth = auth, ServerAddress = registries.Basic.Host });
        Assert.Equal(id, (await hulld.StatusAsync(image))?.Id);

        var malformed = await hulld.PullFailsAsync(image, new AuthConfig { Auth = "not base64!" });
        malformed.AssertCode(StatusCode.InvalidArgument);
    }

    [E2EFact("docker-registry", "skopeo", "umoci")]
    public async Task Token_auth_registry_pulls_with_a_bearer_token_for_username_and_password()
    {
        await using var hulld = await PullTests.StartHulldForAsync(registries.Token);
        string image = AuthRegistries.Busybox(registries.Token);
        var tokens = registries.Token.TokenServer!;

        var anonymous = await hulld.PullFailsAsync(image);
        anonymous.AssertCode(StatusCode.FailedPrecondition);
        await hulld.AssertStoreIsEmptyAsync();

        string id = await hulld.PullAsync(image, new AuthConfig { Username = User.Username, Password = User.Password });
        Assert.Equal(id, (await hulld.StatusAsync(image))?.Id);
        Assert.Contains(tokens.Requests, r => r.Granted && r.Username == User.Username && r.Scopes.Contains("repository:hull-test/busybox:pull"));
    }
}
