using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Hull.Cri.Streaming;
using Hull.Streaming;
using Microsoft.Extensions.Logging;

namespace Hulld.Composition;

/// <summary>
/// Starts the CRI streaming server (exec, attach, port-forward) on <c>stream_server_address</c>:<c>stream_server_port</c>
/// ("0" picks a free port), with TLS when <c>enable_tls_streaming</c> is set: the <c>x509_key_pair_streaming</c> files,
/// or a self-signed certificate as containerd makes one.
/// </summary>
internal static class StreamingComposition
{
    public static async Task<StreamingServer> StartAsync(StreamingOptions cri, LifecycleParts lifecycle, ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        if (!int.TryParse(cri.Port, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument, $"stream_server_port \"{cri.Port}\" is not a port number");
        var address = cri.Address.Length > 0 ? cri.Address : "127.0.0.1";
        if (!IPAddress.TryParse(address, out _))
            throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument, $"stream_server_address \"{address}\" is not an IP address");
        var runtime = new ContainerStreamingRuntime(lifecycle.Containers, lifecycle.Pods, loggers.CreateLogger<ContainerStreamingRuntime>());
        var server = new StreamingServer(runtime, new StreamingServerOptions
        {
            Address = address,
            Port = port,
            Certificate = cri.Tls ? Certificate(cri, address) : null,
            StreamIdleTimeout = cri.IdleTimeout > TimeSpan.Zero ? cri.IdleTimeout : Timeout.InfiniteTimeSpan,
        }, loggers);
        await server.StartAsync(cancellationToken).ConfigureAwait(false);
        return server;
    }

    private static X509Certificate2 Certificate(StreamingOptions cri, string address)
    {
        if (cri.TlsCertFile.Length > 0 || cri.TlsKeyFile.Length > 0)
        {
            if (cri.TlsCertFile.Length == 0 || cri.TlsKeyFile.Length == 0)
                throw new Hull.Core.HullException(Hull.Core.ErrorKind.InvalidArgument,
                    "x509_key_pair_streaming needs both tls_cert_file and tls_key_file");
            return X509Certificate2.CreateFromPemFile(cri.TlsCertFile, cri.TlsKeyFile);
        }
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=hull-streaming", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Parse(address));
        names.AddDnsName(Dns.GetHostName());
        request.CertificateExtensions.Add(names.Build());
        using var generated = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        return X509CertificateLoader.LoadPkcs12(generated.Export(X509ContentType.Pfx), null);
    }
}
