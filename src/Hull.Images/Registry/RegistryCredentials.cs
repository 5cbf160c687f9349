using System.Text;
using Hull.Core;

namespace Hull.Images.Registry;

/// <summary>
/// Credentials for one registry. Hull.Cri builds them from the CRI <c>AuthConfig</c> with
/// <see cref="FromAuthConfig"/>; nothing here knows CRI types.
/// </summary>
/// <param name="Username">User for Basic auth or the token endpoint.</param>
/// <param name="Password">Password for <paramref name="Username"/>.</param>
/// <param name="IdentityToken">An OAuth2 refresh token, exchanged at the token endpoint (distribution token spec, POST with grant_type=refresh_token).</param>
/// <param name="RegistryToken">A bearer token sent to the registry as it is, without a token exchange.</param>
public sealed record RegistryCredentials(
    string? Username = null,
    string? Password = null,
    string? IdentityToken = null,
    string? RegistryToken = null)
{
    /// <summary>When set, the credentials are only for this registry (a host, or a URL such as <c>https://index.docker.io/v1/</c>).</summary>
    public string? ServerAddress { get; init; }

    internal bool HasUsernamePassword => !string.IsNullOrEmpty(Username) || !string.IsNullOrEmpty(Password);

    /// <summary>
    /// Builds credentials the way containerd's CRI plugin reads an AuthConfig: username/password first,
    /// then the identity token, then <c>auth</c> (base64 of <c>user:password</c>); the registry token,
    /// which containerd ignores, is used as a bearer token when nothing else is given. Returns null
    /// when the config holds nothing (anonymous pull).
    /// </summary>
    /// <exception cref="HullException">InvalidArgument when <paramref name="auth"/> is not base64 of <c>user:password</c>.</exception>
    public static RegistryCredentials? FromAuthConfig(
        string? username, string? password, string? auth, string? serverAddress, string? identityToken, string? registryToken)
    {
        string? server = string.IsNullOrEmpty(serverAddress) ? null : serverAddress;
        if (!string.IsNullOrEmpty(username))
            return new RegistryCredentials(username, password) { ServerAddress = server };
        if (!string.IsNullOrEmpty(identityToken))
            return new RegistryCredentials(IdentityToken: identityToken) { ServerAddress = server };
        if (!string.IsNullOrEmpty(auth))
        {
            (string user, string pass) = DecodeAuth(auth);
            return new RegistryCredentials(user, pass) { ServerAddress = server };
        }
        if (!string.IsNullOrEmpty(registryToken))
            return new RegistryCredentials(RegistryToken: registryToken) { ServerAddress = server };
        return null;
    }

    /// <summary>
    /// Whether these credentials may be sent to <paramref name="host"/> when pulling from the registry
    /// namespace <paramref name="registryDomain"/>. Without a server address they go everywhere, as in containerd.
    /// </summary>
    public bool AppliesTo(string host, string registryDomain)
    {
        if (ServerAddress is null) return true;
        string server = ServerHost(ServerAddress);
        return SameRegistry(server, host) || SameRegistry(server, registryDomain);
    }

    /// <summary>Never print secrets: logs and exception messages may include a credentials object.</summary>
    public override string ToString() =>
        $"RegistryCredentials {{ Username = {Username}, Password = {Mask(Password)}, IdentityToken = {Mask(IdentityToken)}, RegistryToken = {Mask(RegistryToken)}, ServerAddress = {ServerAddress} }}";

    private static string? Mask(string? secret) => string.IsNullOrEmpty(secret) ? secret : "***";

    private static (string User, string Password) DecodeAuth(string auth)
    {
        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(auth);
        }
        catch (FormatException)
        {
            throw new HullException(ErrorKind.InvalidArgument, "registry auth is not valid base64");
        }

        string text = Encoding.UTF8.GetString(decoded);
        int colon = text.IndexOf(':');
        if (colon < 0) throw new HullException(ErrorKind.InvalidArgument, "registry auth does not decode to \"user:password\"");
        return (text[..colon], text[(colon + 1)..].Trim('\0'));
    }

    private static string ServerHost(string serverAddress)
    {
        string s = serverAddress;
        int scheme = s.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) s = s[(scheme + 3)..];
        int slash = s.IndexOf('/');
        return (slash >= 0 ? s[..slash] : s).ToLowerInvariant();
    }

    // Docker Hub answers to several names; credentials saved for any of them are for all of them.
    private static bool SameRegistry(string a, string b) =>
        string.Equals(Canonical(a), Canonical(b), StringComparison.OrdinalIgnoreCase);

    private static string Canonical(string host) => host.ToLowerInvariant() switch
    {
        "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" => "docker.io",
        var h => h,
    };
}
