using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hull.Core;

namespace Hull.Images.Registry;

/// <summary>Who asks for what: the host, the registry namespace it serves, the credentials and the token scopes.</summary>
internal sealed record AuthScope(RegistryHost Host, string RegistryDomain, RegistryCredentials? Credentials, IReadOnlyList<string> Scopes)
{
    /// <summary>The credentials, if they may be sent to this host.</summary>
    public RegistryCredentials? EffectiveCredentials =>
        Credentials is not null && Credentials.AppliesTo(Host.Host, RegistryDomain) ? Credentials : null;

    public static string RepositoryScope(string repository, bool push) => $"repository:{repository}:{(push ? "pull,push" : "pull")}";
}

/// <summary>
/// Registry authentication as containerd's docker authorizer does it: requests go out anonymously until a
/// host answers 401; its <c>WWW-Authenticate</c> challenge is remembered per host and later requests carry
/// Basic credentials or a bearer token from the token endpoint (distribution token spec: OAuth2 POST with
/// credentials or a refresh token, GET otherwise). Tokens are cached per endpoint, scope and credentials
/// until shortly before they expire, and concurrent requests share one token fetch.
/// </summary>
internal sealed class RegistryAuthenticator(RegistryRetry retry, RegistryClientOptions options)
{
    private const string ClientId = "hull";
    private const int SweepThreshold = 256;
    /// <summary>A token response is a small JSON document; anything this large is not one.</summary>
    private const int MaxTokenResponse = 1024 * 1024;
    private static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, AuthChallenge> _challenges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<CachedToken>>> _tokens = new(StringComparer.Ordinal);

    /// <summary>Adds an Authorization header when the host is known to want one.</summary>
    public async ValueTask ApplyAsync(HttpRequestMessage request, AuthScope scope, HttpClient client, CancellationToken ct)
    {
        RegistryCredentials? credentials = scope.EffectiveCredentials;
        if (!string.IsNullOrEmpty(credentials?.RegistryToken))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credentials.RegistryToken);
            return;
        }

        if (!_challenges.TryGetValue(HostKey(scope.Host), out AuthChallenge? challenge)) return;
        if (challenge.IsBasic)
        {
            if (credentials is { HasUsernamePassword: true })
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", BasicValue(credentials.Username, credentials.Password));
        }
        else if (challenge.IsBearer)
        {
            string token = await GetTokenAsync(challenge, scope, client, ct).ConfigureAwait(false);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    /// <summary>
    /// Learns the challenge of a 401 response; true when a retry can now carry authorization it did not
    /// have (the caller retries at most once, so wrong credentials fail after one round trip).
    /// </summary>
    public bool HandleUnauthorized(HttpResponseMessage response, AuthScope scope)
    {
        IReadOnlyList<AuthChallenge> challenges = AuthChallenge.Parse(response.Headers.WwwAuthenticate.Select(h => h.ToString()));
        AuthChallenge? challenge = challenges.FirstOrDefault(c => c.IsBearer) ?? challenges.FirstOrDefault(c => c.IsBasic);
        if (challenge is null) return false;

        RegistryCredentials? credentials = scope.EffectiveCredentials;
        if (!string.IsNullOrEmpty(credentials?.RegistryToken)) return false; // the given token itself was refused

        _challenges[HostKey(scope.Host)] = challenge;
        if (challenge.IsBasic) return credentials is { HasUsernamePassword: true };

        // A token that was sent and refused (expired early, revoked) must not be used again.
        if (response.RequestMessage?.Headers.Authorization is not null)
            _tokens.TryRemove(TokenKey(challenge, scope, TokenScopes(challenge, scope)), out _);
        return challenge.Realm is not null;
    }

    private async Task<string> GetTokenAsync(AuthChallenge challenge, AuthScope scope, HttpClient client, CancellationToken ct)
    {
        IReadOnlyList<string> scopes = TokenScopes(challenge, scope);
        string key = TokenKey(challenge, scope, scopes);
        while (true)
        {
            var fresh = new Lazy<Task<CachedToken>>(() => FetchTokenAsync(challenge, scope, scopes, client, ct));
            Lazy<Task<CachedToken>> entry = _tokens.GetOrAdd(key, fresh);
            CachedToken token;
            try
            {
                token = await entry.Value.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (entry != fresh && !ct.IsCancellationRequested)
            {
                // The caller whose fetch we shared gave up; fetch with our own token.
                _tokens.TryRemove(new KeyValuePair<string, Lazy<Task<CachedToken>>>(key, entry));
                continue;
            }
            catch
            {
                _tokens.TryRemove(new KeyValuePair<string, Lazy<Task<CachedToken>>>(key, entry));
                throw;
            }

            if (token.RefreshAt > options.TimeProvider.GetUtcNow())
            {
                if (entry == fresh && _tokens.Count > SweepThreshold) SweepExpired();
                return token.Value;
            }
            _tokens.TryRemove(new KeyValuePair<string, Lazy<Task<CachedToken>>>(key, entry));
        }
    }

    // One entry per repository and credentials accumulates in a long-running daemon; drop the stale ones.
    private void SweepExpired()
    {
        DateTimeOffset now = options.TimeProvider.GetUtcNow();
        foreach (KeyValuePair<string, Lazy<Task<CachedToken>>> pair in _tokens)
        {
            if (pair.Value.IsValueCreated && pair.Value.Value.IsCompletedSuccessfully && pair.Value.Value.Result.RefreshAt <= now)
                _tokens.TryRemove(pair);
        }
    }

    private async Task<CachedToken> FetchTokenAsync(
        AuthChallenge challenge, AuthScope scope, IReadOnlyList<string> scopes, HttpClient client, CancellationToken ct)
    {
        string realm = challenge.Realm!;
        RegistryCredentials? credentials = scope.EffectiveCredentials;
        bool hasSecret = !string.IsNullOrEmpty(credentials?.IdentityToken) || !string.IsNullOrEmpty(credentials?.Password);

        if (hasSecret)
        {
            using HttpResponseMessage post = await SendAsync(realm, () => OAuthRequest(realm, challenge.Service, scopes, credentials!, scope.Host), client, ct).ConfigureAwait(false);
            // Registries without the OAuth POST (GCR: 404, Artifactory: 401, ACR: 400) get the GET with Basic auth, as in containerd.
            bool fallBack = post.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized or HttpStatusCode.BadRequest
                || (post.StatusCode == HttpStatusCode.MethodNotAllowed && !string.IsNullOrEmpty(credentials!.Username));
            if (!fallBack) return await ReadTokenAsync(post, realm, scope, ct).ConfigureAwait(false);
        }

        using HttpResponseMessage get = await SendAsync(realm, () => GetRequest(realm, challenge.Service, scopes, credentials, scope.Host), client, ct).ConfigureAwait(false);
        return await ReadTokenAsync(get, realm, scope, ct).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(string realm, Func<HttpRequestMessage> build, HttpClient client, CancellationToken ct)
    {
        try
        {
            return await retry.ExecuteAsync(async token =>
            {
                using HttpRequestMessage request = build();
                // Headers only: the body is read bounded (ReadTokenAsync), never buffered whole at any size.
                return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            string authority = Uri.TryCreate(realm, UriKind.Absolute, out Uri? uri) ? uri.Authority : realm;
            throw new RegistryException(ErrorKind.Unavailable, $"cannot reach the registry token server \"{realm}\": {e.Message}", authority, inner: e);
        }
    }

    private static HttpRequestMessage OAuthRequest(string realm, string? service, IReadOnlyList<string> scopes, RegistryCredentials credentials, RegistryHost host)
    {
        var form = new List<KeyValuePair<string, string>>();
        if (!string.IsNullOrEmpty(service)) form.Add(new("service", service));
        if (scopes.Count > 0) form.Add(new("scope", string.Join(' ', scopes)));
        form.Add(new("client_id", ClientId));
        if (!string.IsNullOrEmpty(credentials.IdentityToken))
        {
            form.Add(new("grant_type", "refresh_token"));
            form.Add(new("refresh_token", credentials.IdentityToken));
        }
        else
        {
            form.Add(new("grant_type", "password"));
            form.Add(new("username", credentials.Username ?? ""));
            form.Add(new("password", credentials.Password ?? ""));
        }
        var request = new HttpRequestMessage(HttpMethod.Post, realm) { Content = new FormUrlEncodedContent(form) };
        AddHostHeaders(request, host);
        return request;
    }

    private static HttpRequestMessage GetRequest(string realm, string? service, IReadOnlyList<string> scopes, RegistryCredentials? credentials, RegistryHost host)
    {
        var query = new StringBuilder();
        if (!string.IsNullOrEmpty(service)) Append(query, "service", service);
        foreach (string s in scopes) Append(query, "scope", s);
        string url = query.Length == 0 ? realm : realm + (realm.Contains('?') ? "&" : "?") + query;

        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (credentials is not null)
        {
            string? secret = !string.IsNullOrEmpty(credentials.IdentityToken) ? credentials.IdentityToken : credentials.Password;
            if (!string.IsNullOrEmpty(secret))
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", BasicValue(credentials.Username, secret));
        }
        AddHostHeaders(request, host);
        return request;

        static void Append(StringBuilder sb, string name, string value)
        {
            if (sb.Length > 0) sb.Append('&');
            sb.Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }
    }

    private async Task<CachedToken> ReadTokenAsync(HttpResponseMessage response, string realm, AuthScope scope, CancellationToken ct)
    {
        byte[]? bounded;
        try
        {
            bounded = await RegistryResponses.ReadBoundedAsync(response, MaxTokenResponse, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new RegistryException(ErrorKind.Unavailable, $"registry token server \"{realm}\" broke off its response: {e.Message}", scope.Host.Host, inner: e);
        }
        byte[] body = bounded ?? throw new RegistryException(ErrorKind.FailedPrecondition,
                $"registry token server \"{realm}\" sent a response larger than {MaxTokenResponse} bytes", scope.Host.Host, response.StatusCode);
        if (!response.IsSuccessStatusCode)
        {
            IReadOnlyList<RegistryError> errors = RegistryError.Parse(body);
            ErrorKind kind = response.StatusCode switch
            {
                >= HttpStatusCode.InternalServerError => ErrorKind.Unavailable,
                HttpStatusCode.TooManyRequests => ErrorKind.ResourceExhausted,
                _ => ErrorKind.FailedPrecondition,
            };
            string who = scope.EffectiveCredentials is null ? "anonymous access" : "the given credentials";
            throw new RegistryException(kind,
                $"registry token server \"{realm}\" refused {who} for \"{scope.Host.Host}\": {RegistryResponses.Describe(response, errors)}",
                scope.Host.Host, response.StatusCode, errors);
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            JsonElement root = doc.RootElement;
            string? token = Str(root, "token");
            if (string.IsNullOrEmpty(token)) token = Str(root, "access_token");
            if (string.IsNullOrEmpty(token)) throw new JsonException("no token in the response");
            TimeSpan lifetime = root.TryGetProperty("expires_in", out JsonElement e) && e.ValueKind == JsonValueKind.Number && e.GetInt64() > 0
                ? TimeSpan.FromSeconds(e.GetInt64())
                : DefaultTokenLifetime;
            // Refresh a little early so a token does not expire between being attached and being checked.
            TimeSpan margin = TimeSpan.FromTicks(Math.Min(lifetime.Ticks / 5, TimeSpan.FromSeconds(30).Ticks));
            return new CachedToken(token, options.TimeProvider.GetUtcNow() + lifetime - margin);
        }
        catch (JsonException e)
        {
            throw new RegistryException(ErrorKind.Unavailable, $"registry token server \"{realm}\" sent an unreadable token: {e.Message}", scope.Host.Host);
        }

        static string? Str(JsonElement root, string name) =>
            root.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    // The request's own scopes; a ping (no scopes) takes what the challenge asks for.
    private static IReadOnlyList<string> TokenScopes(AuthChallenge challenge, AuthScope scope) =>
        scope.Scopes.Count > 0 || string.IsNullOrEmpty(challenge.Scope) ? scope.Scopes : challenge.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string TokenKey(AuthChallenge challenge, AuthScope scope, IReadOnlyList<string> scopes)
    {
        RegistryCredentials? c = scope.EffectiveCredentials;
        // Tokens belong to the credentials that got them; hash so secrets do not sit in dictionary keys.
        string who = c is null ? "" : Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{c.Username}\0{c.Password}\0{c.IdentityToken}")));
        return $"{challenge.Realm}|{challenge.Service}|{string.Join(' ', scopes)}|{who}";
    }

    private static string HostKey(RegistryHost host) => host.Host;

    internal static void AddHostHeaders(HttpRequestMessage request, RegistryHost host)
    {
        foreach ((string name, IReadOnlyList<string> values) in host.Headers)
        {
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, values);
        }
    }

    private static string BasicValue(string? user, string? password) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    private sealed record CachedToken(string Value, DateTimeOffset RefreshAt);
}
