using System.Text;

namespace Hull.Node.E2E.Cluster;

/// <summary>A kubeconfig file with everything embedded (CA, client certificate and key), for one user of one server.</summary>
public static class Kubeconfig
{
    public static string Write(string path, Uri server, ClusterPki pki, PemPair client, string user)
    {
        static string B64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: hull-e2e
              cluster:
                server: {server.ToString().TrimEnd('/')}
                certificate-authority-data: {B64(pki.CaPem)}
            users:
            - name: "{user}"
              user:
                client-certificate-data: {B64(client.CertificatePem)}
                client-key-data: {B64(client.KeyPem)}
            contexts:
            - name: hull-e2e
              context:
                cluster: hull-e2e
                user: "{user}"
            current-context: hull-e2e

            """);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
