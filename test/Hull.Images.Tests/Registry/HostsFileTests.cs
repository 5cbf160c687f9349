using Hull.Core;
using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class HostsFileTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private IReadOnlyList<RegistryHost> Load(string toml) => HostsFile.Load(_dir.Write("docker.io/hosts.toml", toml));

    [Fact]
    public void Mirrors_come_in_file_order_and_the_server_last()
    {
        var hosts = Load("""
            server = "https://registry-1.docker.io"

            [host."https://public-mirror.example.com"]
              capabilities = ["pull"]
            [host."https://docker-mirror.internal"]
              capabilities = ["pull", "resolve"]
              ca = "docker-mirror.crt"
            [host."http://zz-last-mirror.internal:5000"]
            """);

        Assert.Equal(
            ["https://public-mirror.example.com/v2", "https://docker-mirror.internal/v2", "http://zz-last-mirror.internal:5000/v2", "https://registry-1.docker.io/v2"],
            hosts.Select(h => h.BaseUrl));
        Assert.Equal(HostCapabilities.Pull, hosts[0].Capabilities);
        Assert.Equal(HostCapabilities.Pull | HostCapabilities.Resolve, hosts[1].Capabilities);
        Assert.Equal(HostCapabilities.All, hosts[2].Capabilities); // no capabilities key: everything
        Assert.Equal(HostCapabilities.All, hosts[3].Capabilities);
        Assert.Equal([_dir.Sub("docker.io", "docker-mirror.crt")], hosts[1].CaCertificates); // relative to the hosts dir
    }

    [Fact]
    public void All_host_settings_are_read()
    {
        var hosts = Load("""
            [host."https://test-1.registry"]
              capabilities = ["pull", "resolve", "push"]
              ca = ["/etc/certs/test-1-ca.pem", "special.pem"]
              client = [["/etc/certs/client.cert", "/etc/certs/client.key"], ["/etc/certs/client.pem", ""]]
              skip_verify = true
              dial_timeout = "1.5s"
              [host."https://test-1.registry".header]
                x-custom-1 = "custom header"
                x-custom-2 = ["value1", "value2"]

            [host."https://test-2.registry"]
              client = "client.pem"

            [host."https://test-3.registry"]
              client = ["/etc/certs/client-1.pem", "/etc/certs/client-2.pem"]
              skip_verify = false
            """);

        RegistryHost one = hosts[0];
        Assert.Equal(["/etc/certs/test-1-ca.pem", _dir.Sub("docker.io", "special.pem")], one.CaCertificates);
        Assert.Equal(
            [new ClientCertificatePair("/etc/certs/client.cert", "/etc/certs/client.key"), new ClientCertificatePair("/etc/certs/client.pem", null)],
            one.ClientCertificates);
        Assert.True(one.SkipVerify);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), one.DialTimeout);
        Assert.Equal(["custom header"], one.Headers["x-custom-1"]);
        Assert.Equal(["value1", "value2"], one.Headers["X-Custom-2"]);

        Assert.Equal([new ClientCertificatePair(_dir.Sub("docker.io", "client.pem"), null)], hosts[1].ClientCertificates);
        Assert.Null(hosts[1].SkipVerify);
        Assert.Equal(2, hosts[2].ClientCertificates.Count);
        Assert.False(hosts[2].SkipVerify);
    }

    [Fact]
    public void Root_level_settings_belong_to_the_server()
    {
        var hosts = Load("""
            server = "https://registry.example.com"
            ca = "root-ca.pem"
            skip_verify = false
            capabilities = ["pull", "resolve"]
            [header]
              authorization-proxy = "yes"
            """);
        RegistryHost server = Assert.Single(hosts);
        Assert.Equal("registry.example.com", server.Host);
        Assert.Equal([_dir.Sub("docker.io", "root-ca.pem")], server.CaCertificates);
        Assert.Equal(HostCapabilities.Pull | HostCapabilities.Resolve, server.Capabilities);
        Assert.Equal(["yes"], server.Headers["authorization-proxy"]);
    }

    [Fact]
    public void Without_a_server_the_last_entry_has_an_empty_host()
    {
        var hosts = Load("""
            [host."https://registry.example.com"]
              capabilities = ["pull", "resolve"]
            """);
        Assert.Equal(2, hosts.Count);
        Assert.Equal("", hosts[1].Host);
    }

    [Theory]
    [InlineData("registry.example.com", "https", "registry.example.com", "/v2")]
    [InlineData("https://registry.example.com/", "https", "registry.example.com", "/v2")]
    [InlineData("http://registry.example.com:5000", "http", "registry.example.com:5000", "/v2")]
    [InlineData("https://registry.example.com:443", "https", "registry.example.com:443", "/v2")]
    [InlineData("https://mirror-bak.registry/us", "https", "mirror-bak.registry", "/us/v2")]
    [InlineData("https://mirror.registry/us/v2", "https", "mirror.registry", "/us/v2")]
    [InlineData("https://mirror.registry/a/../b/", "https", "mirror.registry", "/b/v2")]
    public void Server_urls_get_a_scheme_and_the_v2_path(string server, string scheme, string host, string path)
    {
        RegistryHost parsed = Assert.Single(Load($"server = \"{server}\""));
        Assert.Equal((scheme, host, path), (parsed.Scheme, parsed.Host, parsed.Path));
    }

    [Fact]
    public void Override_path_uses_the_path_as_the_api_root()
    {
        var hosts = Load("""
            [host."https://non-compliant-mirror.registry/v2/upstream"]
              capabilities = ["pull"]
              override_path = true
            [host."https://no-path.registry"]
              override_path = true
            """);
        Assert.Equal("https://non-compliant-mirror.registry/v2/upstream", hosts[0].BaseUrl);
        Assert.Equal("https://no-path.registry", hosts[1].BaseUrl);
    }

    [Theory]
    [InlineData("[host.\"https://m\"]\ncapabilities = [\"pull\", \"fly\"]", "unknown capability \"fly\"")]
    [InlineData("[host.\"https://m\"]\ndial_timeout = \"soon\"", "dial_timeout")]
    [InlineData("[host.\"https://m\"]\ndial_timeout = 5", "dial_timeout")]
    [InlineData("[host.\"https://m\"]\nskip_verify = \"yes\"", "skip_verify")]
    [InlineData("[host.\"https://m\"]\nca = 1", "ca")]
    [InlineData("[host.\"https://m\"]\nclient = [[\"a\", \"b\", \"c\"]]", "client pair")]
    [InlineData("[host.\"https://m\"]\nheader = \"x\"", "header")]
    [InlineData("server = 5", "server")]
    [InlineData("server = \"ftp://x\"", "http or https")]
    [InlineData("host = 1", "host")]
    [InlineData("server = ", "1:10: ")] // not TOML: the line and column
    [InlineData("server = \"https://a\"\nserver = \"https://b\"", "2:1: The key `server` is already defined")]
    [InlineData("[host.\"https://m\"]\n[host.\"https://m\"]", "2:1: ")] // a table defined twice
    [InlineData("server = \"https://a\\u", "not valid TOML")] // ends inside an escape
    public void Invalid_files_are_FailedPrecondition_naming_the_file(string toml, string reason)
    {
        var e = Assert.Throws<HullException>(() => Load(toml));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains(Path.Join("docker.io", "hosts.toml"), e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Empty_capabilities_list_means_all()
    {
        RegistryHost host = Load("[host.\"https://m\"]\ncapabilities = []")[0];
        Assert.Equal(HostCapabilities.All, host.Capabilities);
    }

    [Fact]
    public void Unknown_keys_are_ignored_as_containerd_does()
    {
        RegistryHost host = Load("[host.\"https://m\"]\nproxy = \"http://p:8080\"\nsomething = 1")[0];
        Assert.Equal("m", host.Host);
    }
}
