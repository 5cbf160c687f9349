using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Hull.Core;

namespace Hull.Images.Registry;

/// <summary>
/// One <see cref="HttpClient"/> per distinct TLS and dial configuration, so connections are pooled across
/// pulls while every host gets its own <c>ca</c>, <c>client</c>, <c>skip_verify</c> and <c>dial_timeout</c>.
/// The key includes the certificate files' timestamps, so a renewed certificate gets a new client.
/// </summary>
internal sealed class RegistryHttpClients(RegistryClientOptions options) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<HttpClient>> _clients = new(StringComparer.Ordinal);

    public HttpClient For(RegistryHost host)
    {
        string key = Key(host);
        Lazy<HttpClient> entry = _clients.GetOrAdd(key, _ => new Lazy<HttpClient>(() => Create(host)));
        try
        {
            return entry.Value;
        }
        catch
        {
            // A broken certificate file must not stay cached once it is fixed.
            _clients.TryRemove(new KeyValuePair<string, Lazy<HttpClient>>(key, entry));
            throw;
        }
    }

    public void Dispose()
    {
        foreach (Lazy<HttpClient> client in _clients.Values)
        {
            if (client.IsValueCreated) client.Value.Dispose();
        }
        _clients.Clear();
    }

    private string Key(RegistryHost host)
    {
        var sb = new StringBuilder();
        sb.Append(host.SkipVerify).Append('|').Append((host.DialTimeout ?? options.DefaultDialTimeout).Ticks);
        foreach (string ca in host.CaCertificates) sb.Append("|ca:").Append(ca).Append('@').Append(Stamp(ca));
        foreach (ClientCertificatePair pair in host.ClientCertificates)
            sb.Append("|client:").Append(pair.CertificatePath).Append('@').Append(Stamp(pair.CertificatePath))
              .Append(':').Append(pair.KeyPath).Append('@').Append(pair.KeyPath is null ? 0 : Stamp(pair.KeyPath));
        return sb.ToString();
    }

    private static long Stamp(string path) => File.Exists(path) ? File.GetLastWriteTimeUtc(path).Ticks : 0;

    private HttpClient Create(RegistryHost host)
    {
        X509Certificate2Collection cas = LoadCas(host);
        X509Certificate2Collection clientCerts = LoadClientCertificates(host);
        bool skipVerify = host.SkipVerify == true;

        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = host.DialTimeout ?? options.DefaultDialTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            // Blob GETs redirect to storage backends; SocketsHttpHandler drops Authorization on redirect.
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = 10,
            UseCookies = false,
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            skipVerify || errors == SslPolicyErrors.None || TrustedByConfiguredCa(certificate, chain, errors, cas);
        if (clientCerts.Count > 0) handler.SslOptions.ClientCertificates = clientCerts;

        return new HttpClient(handler, disposeHandler: true)
        {
            // Blobs can take long; callers' cancellation tokens and progress timeouts bound them instead.
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestHeaders = { { "User-Agent", options.UserAgent } },
        };
    }

    // containerd appends the configured CAs to the system pool: a chain to either is accepted, the name must still match.
    private static bool TrustedByConfiguredCa(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, X509Certificate2Collection cas)
    {
        if (cas.Count == 0 || certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(cas);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (X509ChainElement element in chain.ChainElements) custom.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        using var leaf = new X509Certificate2(certificate);
        return custom.Build(leaf);
    }

    private static X509Certificate2Collection LoadCas(RegistryHost host)
    {
        var collection = new X509Certificate2Collection();
        foreach (string file in host.CaCertificates)
        {
            try
            {
                collection.ImportFromPemFile(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new HullException(ErrorKind.FailedPrecondition, $"cannot load CA certificate \"{file}\" for registry host \"{host.Host}\": {e.Message}", e);
            }
        }
        return collection;
    }

    private static X509Certificate2Collection LoadClientCertificates(RegistryHost host)
    {
        var collection = new X509Certificate2Collection();
        foreach (ClientCertificatePair pair in host.ClientCertificates)
        {
            try
            {
                using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(pair.CertificatePath, pair.KeyPath);
                // A PEM-loaded key is ephemeral; a PKCS#12 round trip gives SslStream a key it can always use.
                collection.Add(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"cannot load client certificate \"{pair.CertificatePath}\" for registry host \"{host.Host}\": {e.Message}", e);
            }
        }
        return collection;
    }
}
