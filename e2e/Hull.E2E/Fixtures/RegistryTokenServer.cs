using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Hull.E2E.Fixtures;

/// <summary>One token request as the token server saw it.</summary>
public sealed record TokenRequest(string? Username, bool Granted, IReadOnlyList<string> Scopes);

/// <summary>
/// The Docker registry token service (distribution's `auth.token`) for one user: a small
/// HttpListener on 127.0.0.1 that answers GET /token?service=..&amp;scope=.. with an ES256 JWT whose
/// x5c header carries a self-signed certificate, the one the registry trusts as its rootcertbundle.
/// Valid Basic credentials get every action they ask for; anonymous clients get pull-only tokens
/// when <c>anonymousPull</c> is set and 401 otherwise; wrong credentials always get 401.
/// </summary>
public sealed class RegistryTokenServer : IDisposable
{
    public const string ServiceName = "hull-test-registry";
    public const string IssuerName = "hull-test-token-issuer";
    private readonly HttpListener _listener;
    private readonly ECDsa _key;
    private readonly string _certificateDer;
    private readonly RegistryCredentials _user;
    private readonly bool _anonymousPull;
    private readonly ConcurrentQueue<TokenRequest> _requests = new();
    private readonly CancellationTokenSource _stop = new();

    private RegistryTokenServer(HttpListener listener, int port, ECDsa key, X509Certificate2 certificate, RegistryCredentials user, bool anonymousPull)
    {
        _listener = listener;
        Port = port;
        _key = key;
        _certificateDer = Convert.ToBase64String(certificate.RawData);
        CertificatePem = certificate.ExportCertificatePem() + "\n";
        _user = user;
        _anonymousPull = anonymousPull;
        _ = Task.Run(ServeAsync);
    }

    public int Port { get; }
    public string Realm => $"http://127.0.0.1:{Port}/token";
    public string Service => ServiceName;
    public string Issuer => IssuerName;
    public string CertificatePem { get; }

    /// <summary>How long an issued token is valid.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    public IReadOnlyList<TokenRequest> Requests => [.. _requests];

    public static RegistryTokenServer Start(RegistryCredentials user, bool anonymousPull)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=hull-test-token-issuer", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        for (int attempt = 1; ; attempt++)
        {
            int port = RegistryProcess.FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return new RegistryTokenServer(listener, port, key, certificate, user, anonymousPull);
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                try
                {
                    listener.Close(); // nothing a failed try throws may escape (see the unit tests' TestHttpServer)
                }
                catch (HttpListenerException) { }
            }
        }
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (HttpListenerException) { return; }
            catch (ObjectDisposedException) { return; }
            try
            {
                Handle(context);
            }
            catch (Exception)
            {
                context.Response.Abort();
            }
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.Url?.AbsolutePath != "/token")
        {
            Respond(response, HttpStatusCode.NotFound, """{"error":"not found"}""");
            return;
        }
        var scopes = request.QueryString.GetValues("scope")?.SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList() ?? [];
        var (username, authenticated) = Authenticate(request.Headers["Authorization"]);
        if (username is not null && !authenticated || username is null && !_anonymousPull)
        {
            _requests.Enqueue(new TokenRequest(username, false, scopes));
            response.Headers["WWW-Authenticate"] = "Basic realm=\"hull-test-token\"";
            Respond(response, HttpStatusCode.Unauthorized, """{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}""");
            return;
        }
        _requests.Enqueue(new TokenRequest(username, true, scopes));
        var token = Issue(username ?? "", scopes, anonymous: username is null);
        var now = DateTimeOffset.UtcNow;
        var body = new JsonObject
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = (int)TokenLifetime.TotalSeconds,
            ["issued_at"] = now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        };
        Respond(response, HttpStatusCode.OK, body.ToJsonString());
    }

    private (string? Username, bool Authenticated) Authenticate(string? header)
    {
        if (header is null || !header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return (null, false);
        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
        }
        catch (FormatException)
        {
            return ("", false);
        }
        int colon = decoded.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0) return (decoded, false);
        var user = decoded[..colon];
        return (user, user == _user.Username && decoded[(colon + 1)..] == _user.Password);
    }

    /// <summary>A JWT as distribution's token auth verifies it: ES256, x5c chain to the root bundle.</summary>
    private string Issue(string subject, List<string> scopes, bool anonymous)
    {
        var access = new JsonArray();
        foreach (var scope in scopes)
        {
            // type:name:actions, where name may itself contain ':' (a registry host with a port).
            int first = scope.IndexOf(':', StringComparison.Ordinal), last = scope.LastIndexOf(':');
            if (first < 0 || last <= first) continue;
            var actions = scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Where(a => !anonymous || a == "pull").Select(a => (JsonNode)JsonValue.Create(a)!).ToArray();
            access.Add(new JsonObject
            {
                ["type"] = scope[..first],
                ["name"] = scope[(first + 1)..last],
                ["actions"] = new JsonArray(actions),
            });
        }
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "ES256", ["x5c"] = new JsonArray(JsonValue.Create(_certificateDer)) };
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = now + (long)TokenLifetime.TotalSeconds,
            ["nbf"] = now - 10,
            ["iat"] = now,
            ["jti"] = Convert.ToHexString(RandomNumberGenerator.GetBytes(12)),
            ["access"] = access,
        };
        var signingInput = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        // .NET signs ECDSA as r||s (IEEE P1363), which is the JWS encoding.
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static void Respond(HttpListenerResponse response, HttpStatusCode status, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        response.StatusCode = (int)status;
        response.ContentType = "application/json";
        response.ContentLength64 = bytes.Length;
        response.OutputStream.Write(bytes);
        response.Close();
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Close();
        _key.Dispose();
    }
}
