using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Hull.Node.E2E.Cluster;

/// <summary>A certificate and its private key, as PEM files on disk (what the Kubernetes binaries read).</summary>
public sealed record PemPair(string CertificatePath, string KeyPath)
{
    public string CertificatePem => File.ReadAllText(CertificatePath);
    public string KeyPem => File.ReadAllText(KeyPath);

    /// <summary>For .NET clients (HttpClient, ClientWebSocket): loaded from the PEM files.</summary>
    public X509Certificate2 Load() => X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
}

/// <summary>
/// The cluster's certificates, made in process with <see cref="CertificateRequest"/> (ECDSA P-256): no openssl
/// invocation per certificate, no config files for SANs and usages, and the next fixture (the node-condition tests)
/// can issue its own identities from the same CA. One CA signs everything: the API server's serving certificate,
/// client certificates (admin in <c>system:masters</c>, nodes as <c>system:node:NAME</c> in <c>system:nodes</c>,
/// the API server's kubelet client) and each kubelet's serving certificate, so <c>kubectl exec/logs/port-forward</c>
/// work through the API server with verification on both hops. The service-account signing key is separate.
/// </summary>
public sealed class ClusterPki
{
    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;

    private ClusterPki(string dir, X509Certificate2 ca, ECDsa caKey)
    {
        Dir = dir;
        _ca = ca;
        _caKey = caKey;
    }

    public string Dir { get; }
    public string CaPath => Path.Combine(Dir, "ca.crt");
    public string CaPem => File.ReadAllText(CaPath);
    public string ServiceAccountKeyPath => Path.Combine(Dir, "sa.key");
    public string ServiceAccountPublicKeyPath => Path.Combine(Dir, "sa.pub");

    public static ClusterPki Create(string dir)
    {
        Directory.CreateDirectory(dir);
        var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=hull-e2e-ca", caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(2));
        var pki = new ClusterPki(dir, ca, caKey);
        File.WriteAllText(pki.CaPath, ca.ExportCertificatePem());
        WriteKey(Path.Combine(dir, "ca.key"), caKey);

        using var sa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        WriteKey(pki.ServiceAccountKeyPath, sa);
        File.WriteAllText(pki.ServiceAccountPublicKeyPath, sa.ExportSubjectPublicKeyInfoPem());
        return pki;
    }

    /// <summary>A client certificate: the API server takes the user from CN and the groups from O.</summary>
    public PemPair IssueClient(string name, string user, params string[] groups)
    {
        var subject = "CN=" + Escape(user) + string.Concat(groups.Select(g => ", O=" + Escape(g)));
        return Issue(name, subject, serverAuth: false, dnsNames: [], ips: []);
    }

    /// <summary>A serving certificate for these names and addresses (Go checks the SANs only).</summary>
    public PemPair IssueServing(string name, IEnumerable<string> dnsNames, IEnumerable<IPAddress> ips) =>
        Issue(name, "CN=" + Escape(name), serverAuth: true, dnsNames, ips);

    private PemPair Issue(string name, string subject, bool serverAuth, IEnumerable<string> dnsNames, IEnumerable<IPAddress> ips)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [serverAuth ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var sans = new SubjectAlternativeNameBuilder();
        bool any = false;
        foreach (var dns in dnsNames) { sans.AddDnsName(dns); any = true; }
        foreach (var ip in ips) { sans.AddIpAddress(ip); any = true; }
        if (any) request.CertificateExtensions.Add(sans.Build());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var certificate = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForECDsa(_caKey),
            DateTimeOffset.UtcNow.AddMinutes(-30), DateTimeOffset.UtcNow.AddDays(1), serial);
        var pair = new PemPair(Path.Combine(Dir, name + ".crt"), Path.Combine(Dir, name + ".key"));
        File.WriteAllText(pair.CertificatePath, certificate.ExportCertificatePem());
        WriteKey(pair.KeyPath, key);
        return pair;
    }

    /// <summary>Checks a server certificate against this CA only (for .NET clients of the API server).</summary>
    public bool Verify(X509Certificate? certificate)
    {
        if (certificate is null) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    private static void WriteKey(string path, ECDsa key)
    {
        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace(",", "\\,").Replace("=", "\\=");
}
