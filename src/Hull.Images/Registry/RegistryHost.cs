namespace Hull.Images.Registry;

/// <summary>What a registry host may be used for (hosts.toml <c>capabilities</c>).</summary>
[Flags]
public enum HostCapabilities
{
    None = 0,

    /// <summary>Fetch content by digest.</summary>
    Pull = 1,

    /// <summary>Turn a tag into a digest; a trusted operation, so public mirrors usually lack it.</summary>
    Resolve = 2,

    Push = 4,

    All = Pull | Resolve | Push,
}

/// <summary>A TLS client certificate and its key; a null key means the key is in the certificate file.</summary>
public sealed record ClientCertificatePair(string CertificatePath, string? KeyPath);

/// <summary>
/// One endpoint to try for a registry namespace: a mirror from <c>[host."..."]</c> or the
/// <c>server</c>, as containerd's <c>docker.RegistryHost</c>.
/// </summary>
public sealed record RegistryHost(string Scheme, string Host, string Path, HostCapabilities Capabilities)
{
    /// <summary>CA files trusted in addition to the system roots.</summary>
    public IReadOnlyList<string> CaCertificates { get; init; } = [];

    public IReadOnlyList<ClientCertificatePair> ClientCertificates { get; init; } = [];

    /// <summary>Null when hosts.toml does not say; set means TLS was configured explicitly.</summary>
    public bool? SkipVerify { get; init; }

    /// <summary>Extra headers for every request to this host (and its token endpoint).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Headers { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Connect timeout; containerd's default is 30s.</summary>
    public TimeSpan? DialTimeout { get; init; }

    /// <summary>
    /// Try HTTPS and fall back to plain HTTP when the TLS handshake fails: containerd's behaviour for
    /// localhost and for <c>http://</c> hosts that also configure TLS.
    /// </summary>
    public bool HttpFallback { get; init; }

    public bool Has(HostCapabilities capability) => (Capabilities & capability) == capability;

    /// <summary>The API root, e.g. <c>https://registry-1.docker.io/v2</c>.</summary>
    public string BaseUrl => $"{Scheme}://{Host}{Path}";

    public override string ToString() => BaseUrl;
}
