using Hull.Core;
using Hull.Kube;

namespace Hull.Kube.Tests;

public sealed class KubeEnvironmentTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private KubeEnvironment Environment(string? host = "127.0.0.1", string? port = "6443", string? nodeName = null, string hostName = "Worker-1.Example") =>
        new(host, port, _dir.Path, nodeName, hostName);

    [Fact]
    public void The_node_name_is_the_configured_one_then_NODE_NAME_then_the_host_name_in_lower_case()
    {
        Assert.Equal("configured", Environment(nodeName: "from-env").ResolveNodeName("configured"));
        Assert.Equal("from-env", Environment(nodeName: " from-env ").ResolveNodeName(""));
        Assert.Equal("worker-1.example", Environment(nodeName: "").ResolveNodeName(""));
    }

    [Fact]
    public void In_cluster_needs_the_service_variables_the_token_and_the_CA_and_says_which_is_missing()
    {
        Assert.Contains("KUBERNETES_SERVICE_HOST", Environment(host: null).InClusterProblem);
        Assert.Contains($"no service account token at {_dir.Sub("token")}", Environment().InClusterProblem);
        _dir.Write("token", "t1");
        Assert.Contains($"no cluster CA at {_dir.Sub("ca.crt")}", Environment().InClusterProblem);
        _dir.Write("ca.crt", "pem");
        Assert.True(Environment().InCluster);
    }

    [Fact]
    public void Placement_is_hulld_with_a_kubeconfig_or_in_a_pod_else_the_DaemonSets_reporter()
    {
        var options = new NodeConditionsOptions { Enable = true, Kubeconfig = "", NodeName = "", ResyncInterval = TimeSpan.FromMinutes(5), IgnoredDeprecations = [] };
        Assert.Equal(ReporterPlacement.DaemonSetPod, options.Placement(Environment(host: null)));
        Assert.Equal(ReporterPlacement.ThisProcess, (options with { Kubeconfig = "/k" }).Placement(Environment(host: null)));
        _dir.Write("token", "t");
        _dir.Write("ca.crt", "pem");
        Assert.Equal(ReporterPlacement.ThisProcess, options.Placement(Environment()));
        Assert.Equal(ReporterPlacement.Disabled, (options with { Enable = false, Kubeconfig = "/k" }).Placement(Environment()));
    }

    [Fact]
    public void Credentials_fail_clearly_for_a_missing_or_broken_kubeconfig_and_missing_in_cluster_files()
    {
        var missing = Assert.Throws<HullException>(() => KubeCredentials.Load(_dir.Sub("nope"), Environment()));
        Assert.Equal(ErrorKind.FailedPrecondition, missing.Kind);
        Assert.Contains($"kubeconfig \"{_dir.Sub("nope")}\" does not exist", missing.Message);

        string broken = _dir.Write("broken.kubeconfig", "apiVersion: v1\nkind: Config\nclusters: [\n");
        Assert.Contains($"kubeconfig \"{broken}\":", Assert.Throws<HullException>(() => KubeCredentials.Load(broken, Environment())).Message);

        var notInPod = Assert.Throws<HullException>(() => KubeCredentials.Load("", Environment(host: null)));
        Assert.Contains("no in-cluster credentials: KUBERNETES_SERVICE_HOST", notInPod.Message);
        Assert.Contains("[plugins.'io.hull.kube.v1.node-conditions']", notInPod.Message);
    }

    [Fact]
    public async Task In_cluster_credentials_take_the_server_from_the_environment_and_read_the_token_file_per_request()
    {
        _dir.Write("token", "first-token\n");
        _dir.Write("ca.crt", TestCa.Pem);
        var config = KubeCredentials.Load("", Environment(host: "10.96.0.1", port: "443"));
        Assert.Equal("https://10.96.0.1/", config.Host);
        Assert.Single(config.SslCaCerts);
        // A token provider (which reads the projected file again as the kubelet rotates it), not a token copied at start.
        Assert.Null(config.AccessToken);
        var header = await config.TokenProvider.GetAuthenticationHeaderAsync(CancellationToken.None);
        Assert.Equal("Bearer first-token", header.ToString());
    }
}

/// <summary>A self-signed certificate in PEM, made once.</summary>
internal static class TestCa
{
    public static readonly string Pem = Make();

    private static string Make()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=test-ca", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1));
        return certificate.ExportCertificatePem();
    }
}
