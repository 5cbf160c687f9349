using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Hull.Core;
using k8s;
using k8s.Authentication;
using k8s.Exceptions;

namespace Hull.Kube;

/// <summary>
/// The client configuration of the identity that patches the Node: a kubeconfig file (any user it names, e.g. the
/// kubelet's <c>system:node:NAME</c>), or the pod's service account. The service-account token is a projected one the
/// kubelet rotates, so it is read from its file again before each request once a minute has passed
/// (KubernetesClient's <see cref="TokenFileAuth"/>), never kept from the start.
/// </summary>
public static class KubeCredentials
{
    /// <summary>Each request to the API server gives up after this long (the retry policy then tries again).</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Loads the configuration; a missing or broken file or missing in-cluster files fail with what is wrong.</summary>
    public static KubernetesClientConfiguration Load(string kubeconfig, KubeEnvironment environment)
    {
        KubernetesClientConfiguration config;
        if (kubeconfig.Length > 0)
        {
            if (!File.Exists(kubeconfig))
                throw new HullException(ErrorKind.FailedPrecondition, $"kubeconfig \"{kubeconfig}\" does not exist");
            try
            {
                config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
            }
            catch (Exception e) when (e is KubeConfigException or IOException or UnauthorizedAccessException or FormatException
                or YamlDotNet.Core.YamlException)
            {
                throw new HullException(ErrorKind.FailedPrecondition, $"kubeconfig \"{kubeconfig}\": {e.Message}");
            }
        }
        else
        {
            if (environment.InClusterProblem is { } problem)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"no in-cluster credentials: {problem}; set `kubeconfig` in [plugins.'io.hull.kube.v1.node-conditions']");
            config = new KubernetesClientConfiguration
            {
                Host = new UriBuilder("https", environment.ServiceHost!.Trim(), int.Parse(environment.ServicePort!.Trim())).Uri.ToString(),
                TokenProvider = new TokenFileAuth(environment.TokenPath),
                SslCaCerts = LoadCa(environment.CaPath),
            };
        }
        config.HttpClientTimeout = RequestTimeout;
        return config;
    }

    private static X509Certificate2Collection LoadCa(string path)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cluster CA \"{path}\": {e.Message}");
        }
        return certificates.Count > 0 ? certificates
            : throw new HullException(ErrorKind.FailedPrecondition, $"cluster CA \"{path}\" holds no PEM certificate");
    }

    /// <summary>How the credentials were chosen, in words for logs and <c>hullctl info</c>.</summary>
    public static string Describe(string kubeconfig) => kubeconfig.Length > 0 ? $"kubeconfig {kubeconfig}" : "in-cluster service account";
}
