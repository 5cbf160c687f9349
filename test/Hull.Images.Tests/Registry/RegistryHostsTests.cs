using Hull.Images.Registry;

namespace Hull.Images.Tests.Registry;

public sealed class RegistryHostsTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("docker.io", "https://registry-1.docker.io/v2", false, null)]
    [InlineData("quay.io", "https://quay.io/v2", false, null)]
    [InlineData("registry.example.com:5000", "https://registry.example.com:5000/v2", false, null)]
    [InlineData("localhost", "https://localhost/v2", false, true)]
    [InlineData("localhost:443", "https://localhost:443/v2", false, true)]
    [InlineData("localhost:5000", "https://localhost:5000/v2", true, true)] // ambiguous port: HTTPS first, then HTTP
    [InlineData("127.0.0.1:5000", "https://127.0.0.1:5000/v2", true, true)]
    [InlineData("[::1]:5000", "https://[::1]:5000/v2", true, true)]
    [InlineData("localhost:80", "http://localhost:80/v2", false, null)]
    public void Without_configuration_each_namespace_gets_its_default_server(string registry, string url, bool httpFallback, bool? skipVerify)
    {
        RegistryHost host = Assert.Single(new RegistryHosts().Resolve(registry));
        Assert.Equal(url, host.BaseUrl);
        Assert.Equal(httpFallback, host.HttpFallback);
        Assert.Equal(skipVerify, host.SkipVerify);
        Assert.Equal(HostCapabilities.All, host.Capabilities);
    }

    [Fact]
    public void Directory_candidates_follow_containerds_unix_order()
    {
        Assert.Equal(
            [Path.Join("/r", "myregistry.io_5000_"), Path.Join("/r", "myregistry.io:5000"), Path.Join("/r", "_default")],
            RegistryHosts.DirectoryCandidates("/r", "myregistry.io:5000"));
        Assert.Equal([Path.Join("/r", "docker.io"), Path.Join("/r", "_default")], RegistryHosts.DirectoryCandidates("/r", "docker.io"));
    }

    [Fact]
    public void The_underscored_port_directory_wins_over_host_colon_port()
    {
        _dir.Write("myregistry.io_5000_/hosts.toml", "server = \"https://underscore.example\"");
        _dir.Write("myregistry.io:5000/hosts.toml", "server = \"https://colon.example\"");
        _dir.Write("_default/hosts.toml", "server = \"https://default.example\"");
        var hosts = new RegistryHosts(_dir.Path);

        Assert.Equal("underscore.example", Assert.Single(hosts.Resolve("myregistry.io:5000")).Host);
    }

    [Fact]
    public void Host_colon_port_directory_is_used_when_there_is_no_underscored_one()
    {
        _dir.Write("myregistry.io:5000/hosts.toml", "server = \"https://colon.example\"");
        _dir.Write("_default/hosts.toml", "server = \"https://default.example\"");
        Assert.Equal("colon.example", Assert.Single(new RegistryHosts(_dir.Path).Resolve("myregistry.io:5000")).Host);
    }

    [Fact]
    public void Default_directory_applies_to_namespaces_without_their_own_and_keeps_the_upstream_last()
    {
        _dir.Write("_default/hosts.toml", """
            [host."https://registry.example.com"]
              capabilities = ["pull", "resolve"]
            """);
        _dir.Write("quay.io/hosts.toml", "server = \"https://quay.io\"");
        var hosts = new RegistryHosts(_dir.Path);

        Assert.Equal(["https://registry.example.com/v2", "https://registry-1.docker.io/v2"], hosts.Resolve("docker.io").Select(h => h.BaseUrl));
        Assert.Equal(["https://quay.io/v2"], hosts.Resolve("quay.io").Select(h => h.BaseUrl));
    }

    [Fact]
    public void A_mirror_as_server_replaces_the_upstream()
    {
        _dir.Write("_default/hosts.toml", "server = \"https://registry.example.com\"");
        Assert.Equal(["https://registry.example.com/v2"], new RegistryHosts(_dir.Path).Resolve("ghcr.io").Select(h => h.BaseUrl));
    }

    [Fact]
    public void Changes_to_hosts_toml_apply_on_the_next_resolve()
    {
        string file = _dir.Write("docker.io/hosts.toml", "server = \"https://first.example\"");
        var hosts = new RegistryHosts(_dir.Path);
        Assert.Equal("first.example", Assert.Single(hosts.Resolve("docker.io")).Host);

        File.WriteAllText(file, "server = \"https://second.example\"");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5)); // even within the same timestamp tick
        Assert.Equal("second.example", Assert.Single(hosts.Resolve("docker.io")).Host);

        Directory.Delete(_dir.Sub("docker.io"), recursive: true);
        Assert.Equal("registry-1.docker.io", Assert.Single(hosts.Resolve("docker.io")).Host);
    }

    [Fact]
    public void Unchanged_file_is_not_parsed_again_but_results_are_not_shared()
    {
        _dir.Write("docker.io/hosts.toml", "[host.\"https://m\"]\ncapabilities = [\"pull\"]");
        var hosts = new RegistryHosts(_dir.Path);
        var first = hosts.Resolve("docker.io");
        var second = hosts.Resolve("docker.io");
        Assert.Equal(first, second);
        Assert.NotSame(first, second);
    }

    [Fact]
    public void Http_host_with_tls_settings_tries_https_first_unless_port_80()
    {
        _dir.Write("registry.local/hosts.toml", """
            [host."http://mirror.local:5000"]
              skip_verify = true
            [host."http://mirror.local:80"]
              ca = "ca.pem"
            [host."http://plain.local:5000"]
            """);
        var hosts = new RegistryHosts(_dir.Path).Resolve("registry.local");
        Assert.Equal(("https", true), (hosts[0].Scheme, hosts[0].HttpFallback));
        Assert.Equal(("http", false), (hosts[1].Scheme, hosts[1].HttpFallback));
        Assert.Equal(("http", false), (hosts[2].Scheme, hosts[2].HttpFallback));
    }

    [Fact]
    public void Directory_without_hosts_toml_uses_docker_certificate_files()
    {
        _dir.Write("registry.local:5000/ca.crt", "x");
        _dir.Write("registry.local:5000/client.cert", "x");
        _dir.Write("registry.local:5000/client.key", "x");
        _dir.Write("registry.local:5000/other.cert", "x");
        RegistryHost host = Assert.Single(new RegistryHosts(_dir.Path).Resolve("registry.local:5000"));

        Assert.Equal("https://registry.local:5000/v2", host.BaseUrl);
        Assert.Equal([_dir.Sub("registry.local:5000", "ca.crt")], host.CaCertificates);
        Assert.Equal(
            [
                new ClientCertificatePair(_dir.Sub("registry.local:5000", "client.cert"), _dir.Sub("registry.local:5000", "client.key")),
                new ClientCertificatePair(_dir.Sub("registry.local:5000", "other.cert"), null),
            ],
            host.ClientCertificates);
    }

    [Fact]
    public void Several_config_roots_are_searched_in_order()
    {
        using var second = new TestDirectory();
        second.Write("docker.io/hosts.toml", "server = \"https://from-second.example\"");
        _dir.Write("quay.io/hosts.toml", "server = \"https://from-first.example\"");
        var hosts = new RegistryHosts(_dir.Path + ":" + second.Path);

        Assert.Equal("from-second.example", Assert.Single(hosts.Resolve("docker.io")).Host);
        Assert.Equal("from-first.example", Assert.Single(hosts.Resolve("quay.io")).Host);
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("localhost:5000", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.0.0.2:5000", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("::1", true)]
    [InlineData("docker.io", false)]
    [InlineData("10.0.0.1:5000", false)]
    [InlineData("localhost.example.com", false)]
    public void IsLocalhost_matches_containerd(string host, bool expected)
    {
        Assert.Equal(expected, RegistryHosts.IsLocalhost(host));
    }
}
