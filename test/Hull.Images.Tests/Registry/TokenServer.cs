using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Web;

namespace Hull.Images.Tests.Registry;

/// <summary>
/// A distribution token server (docs/spec/auth/token.md and oauth.md) for docker-registry's <c>auth: token</c>:
/// issues ES256 JWTs with the signing certificate in the <c>x5c</c> header, which the registry verifies
/// against the root certificate bundle written here. Users: <see cref="RegistryProcess.User"/> with its
/// password, or the refresh token <see cref="RefreshToken"/>; they get what they ask for. Anonymous callers
/// get pull on <c>public/*</c> only.
/// </summary>
public sealed class TokenServer : IAsyncDisposable
{
    public const string Service = "hull-registry";
    public const string Issuer = "hull-test-issuer";
    public const string RefreshToken = "hull-refresh-token";

    private readonly TestHttpServer _http;
    private readonly ECDsa _key;
    private readonly X509Certificate2 _certificate;

    public TokenServer(TestDirectory dir)
    {
        _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=hull test token signer", _key, HashAlgorithmName.SHA256);
        byte[] serial = RandomNumberGenerator.GetBytes(8);
        serial[0] = 0x01; // positive
        _certificate = request.Create(request.SubjectName, X509SignatureGenerator.CreateForECDsa(_key),
            DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
        RootCertBundle = dir.Write("token-root.pem", _certificate.ExportCertificatePem());
        _http = new TestHttpServer(HandleAsync);
    }

    public string Realm => $"{_http.Url}/token";

    public string RootCertBundle { get; }

    /// <summary>The registry config's <c>auth:</c> section for this server.</summary>
    public string AuthYaml => $"  token:\n    realm: {Realm}\n    service: {Service}\n    issuer: {Issuer}\n    rootcertbundle: {RootCertBundle}";

    /// <summary>Every token request: method, grant type (POST) or "basic"/"anonymous" (GET), and scopes.</summary>
    public ConcurrentQueue<(string Method, string Grant, string Scopes)> Requests { get; } = new();

    public async ValueTask DisposeAsync()
    {
        await _http.DisposeAsync();
        _certificate.Dispose();
        _key.Dispose();
    }

    /// <summary>A token issued directly, as a kubelet credential provider would hand one over.</summary>
    public string Mint(string subject, params (string Repository, string[] Actions)[] access) => Jwt(subject, access);

    private async Task HandleAsync(HttpListenerContext context)
    {
        HttpListenerRequest request = context.Request;
        if (request.Url?.AbsolutePath != "/token")
        {
            await TestHttpServer.WriteAsync(context.Response, 404, "{}");
            return;
        }

        string? user = null;
        bool authenticated;
        IEnumerable<string> scopes;
        if (request.HttpMethod == "POST")
        {
            using var reader = new StreamReader(request.InputStream, Encoding.UTF8);
            var form = HttpUtility.ParseQueryString(await reader.ReadToEndAsync());
            string grant = form["grant_type"] ?? "";
            scopes = (form["scope"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Requests.Enqueue(("POST", grant, string.Join(' ', scopes)));
            authenticated = grant switch
            {
                "password" => form["username"] == RegistryProcess.User && form["password"] == RegistryProcess.Password,
                "refresh_token" => form["refresh_token"] == RefreshToken,
                _ => false,
            };
            user = grant == "password" ? form["username"] : "refresh-user";
            if (!authenticated || form["service"] != Service)
            {
                await TestHttpServer.WriteAsync(context.Response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}""");
                return;
            }
        }
        else
        {
            var query = HttpUtility.ParseQueryString(request.Url.Query);
            scopes = query.GetValues("scope") ?? [];
            string? header = request.Headers["Authorization"];
            Requests.Enqueue(("GET", header is null ? "anonymous" : "basic", string.Join(' ', scopes)));
            authenticated = false;
            if (header is not null)
            {
                string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..]));
                authenticated = decoded == $"{RegistryProcess.User}:{RegistryProcess.Password}" || decoded == $":{RefreshToken}";
                if (!authenticated)
                {
                    await TestHttpServer.WriteAsync(context.Response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}""");
                    return;
                }
                user = RegistryProcess.User;
            }
        }

        var access = new List<(string, string[])>();
        foreach (string scope in scopes)
        {
            string[] parts = scope.Split(':');
            if (parts.Length != 3 || parts[0] != "repository") continue;
            string[] actions = parts[2].Split(',');
            if (!authenticated) actions = parts[1].StartsWith("public/", StringComparison.Ordinal) ? actions.Intersect(["pull"]).ToArray() : [];
            access.Add((parts[1], actions));
        }

        string token = Jwt(user ?? "", access.ToArray());
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = 300,
            ["issued_at"] = DateTimeOffset.UtcNow.ToString("O"),
        });
        await TestHttpServer.WriteAsync(context.Response, 200, body);
    }

    private string Jwt(string subject, (string Repository, string[] Actions)[] access)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string header = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["typ"] = "JWT",
            ["alg"] = "ES256",
            ["x5c"] = new[] { Convert.ToBase64String(_certificate.RawData) },
        }));
        string claims = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = now + 300,
            ["nbf"] = now - 10,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access.Select(a => new Dictionary<string, object> { ["type"] = "repository", ["name"] = a.Repository, ["actions"] = a.Actions }).ToArray(),
        }));
        // JWS ES256 is the raw r||s pair, which is .NET's default (IEEE P1363) format.
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(header + "." + claims), HashAlgorithmName.SHA256);
        return header + "." + claims + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
