using Hull.Core;
using Hull.Images.Reference;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

/// <summary>docker-registry on HTTPS with a test CA, requiring client certificates from the same CA.</summary>
public sealed class TlsRegistryFixture : IAsyncLifetime
{
    public TestDirectory Dir { get; } = new();

    public TestCertificates Certificates { get; private set; } = null!;

    public RegistryProcess Registry { get; private set; } = null!;

    public TestImage Image { get; } = TestImage.Create();

    public async Task InitializeAsync()
    {
        if (!RegistryProcess.IsAvailable) return;
        Certificates = TestCertificates.Create(Dir);
        Registry = await RegistryProcess.StartAsync(new RegistryProcessOptions
        {
            Tls = (Certificates.ServerPem, Certificates.ServerKeyPem),
            ClientCa = Certificates.CaPem,
        });
    }

    public async Task DisposeAsync()
    {
        if (Registry is not null) await Registry.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed class RegistryTlsTests(TlsRegistryFixture fixture) : IClassFixture<TlsRegistryFixture>
{
    // The registry is served under a made-up namespace so hosts.toml decides everything about TLS.
    private static readonly ImageReference Image = ImageReference.ParseDockerRef("secure.test/hull/tls:1");

    private RegistryClient ClientFor(string hostsToml, out TestDirectory config)
    {
        config = new TestDirectory();
        // Certificates are given relative to the hosts directory, so copy them next to hosts.toml.
        File.Copy(fixture.Certificates.CaPem, config.Sub("ca.pem"));
        File.Copy(fixture.Certificates.ClientPem, config.Sub("client.pem"));
        File.Copy(fixture.Certificates.ClientKeyPem, config.Sub("client-key.pem"));
        config.Write("secure.test/hosts.toml", hostsToml);
        return new RegistryClient(new RegistryHosts(config.Path), PlainRegistryFixture.FastRetries);
    }

    [RegistryFact]
    public async Task The_configured_CA_and_client_certificate_are_used()
    {
        using var client = ClientFor($"""
            server = "https://{fixture.Registry.Host}"
            ca = "../ca.pem"
            client = [["../client.pem", "../client-key.pem"]]
            """, out TestDirectory config);
        using (config)
        {
            RegistryRepository repo = client.Repository(Image);
            await fixture.Image.PushAsync(repo, "1");
            Assert.Equal(fixture.Image.Index.Descriptor.Digest, (await repo.ResolveAsync()).Digest);
        }
    }

    [RegistryFact]
    public async Task Without_the_CA_the_server_is_not_trusted_and_not_retried()
    {
        using var client = ClientFor($"""
            server = "https://{fixture.Registry.Host}"
            client = [["../client.pem", "../client-key.pem"]]
            """, out TestDirectory config);
        using (config)
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => client.Repository(Image).ResolveAsync());
            Assert.Equal(ErrorKind.Unavailable, e.Kind);
            Assert.Contains($"cannot reach registry \"{fixture.Registry.Host}\"", e.Message);
            Assert.Equal(HttpRequestError.SecureConnectionError, Assert.IsType<HttpRequestException>(e.InnerException).HttpRequestError);
        }
    }

    [RegistryFact]
    public async Task Skip_verify_accepts_the_unknown_CA()
    {
        using var client = ClientFor($"""
            server = "https://{fixture.Registry.Host}"
            skip_verify = true
            client = "../client.pem"
            """, out TestDirectory config);
        // A single client file must hold the key too.
        File.AppendAllText(config.Sub("client.pem"), "\n" + File.ReadAllText(config.Sub("client-key.pem")));
        using (config)
        {
            await client.PingAsync("secure.test");
        }
    }

    [RegistryFact]
    public async Task Without_a_client_certificate_the_registry_refuses_the_connection()
    {
        using var client = ClientFor($"""
            server = "https://{fixture.Registry.Host}"
            ca = "../ca.pem"
            """, out TestDirectory config);
        using (config)
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync("secure.test"));
            Assert.Equal(ErrorKind.Unavailable, e.Kind);
        }
    }

    [RegistryFact]
    public async Task A_missing_CA_file_is_a_clear_configuration_error()
    {
        using var client = ClientFor($"""
            server = "https://{fixture.Registry.Host}"
            ca = "missing.pem"
            """, out TestDirectory config);
        using (config)
        {
            var e = await Assert.ThrowsAsync<HullException>(() => client.PingAsync("secure.test"));
            Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
            Assert.Contains("missing.pem", e.Message);
        }
    }
}
