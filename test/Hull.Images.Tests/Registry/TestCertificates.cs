using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Hull.Images.Tests.Registry;

/// <summary>A test CA with a server certificate for 127.0.0.1 and a client certificate, written as PEM files.</summary>
public sealed class TestCertificates
{
    private TestCertificates(string ca, string server, string serverKey, string client, string clientKey)
    {
        CaPem = ca;
        ServerPem = server;
        ServerKeyPem = serverKey;
        ClientPem = client;
        ClientKeyPem = clientKey;
    }

    public string CaPem { get; }

    public string ServerPem { get; }

    public string ServerKeyPem { get; }

    public string ClientPem { get; }

    public string ClientKeyPem { get; }

    public static TestCertificates Create(TestDirectory dir)
    {
        using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=hull test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using X509Certificate2 ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));

        (string server, string serverKey) = Issue(ca, caKey, "CN=127.0.0.1", serverAuth: true);
        (string client, string clientKey) = Issue(ca, caKey, "CN=hull test client", serverAuth: false);
        return new TestCertificates(
            dir.Write("certs/ca.pem", ca.ExportCertificatePem()),
            dir.Write("certs/server.pem", server),
            dir.Write("certs/server-key.pem", serverKey),
            dir.Write("certs/client.pem", client),
            dir.Write("certs/client-key.pem", clientKey));
    }

    private static (string Certificate, string Key) Issue(X509Certificate2 ca, ECDsa caKey, string subject, bool serverAuth)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (serverAuth)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }
        byte[] serial = RandomNumberGenerator.GetBytes(8);
        serial[0] = 0x01;
        using X509Certificate2 certificate = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
        return (certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
