using System.Collections.Concurrent;
using System.Net;

namespace Hull.Images.Registry;

/// <summary>
/// Turns a registry namespace (<c>docker.io</c>, <c>localhost:5000</c>) into the ordered list of hosts to
/// try, from the <c>hosts.toml</c> files under <c>config_path</c>, exactly as containerd 2.0 does. Files are
/// looked at on every call (a stat, and a parse only when the file changed), so edits apply without a restart.
/// </summary>
public sealed class RegistryHosts
{
    public const string DefaultDirectory = "_default";
    private const string DockerHubDomain = "docker.io";
    private const string DockerHubApiHost = "registry-1.docker.io";

    private readonly ConcurrentDictionary<string, CachedFile> _files = new(StringComparer.Ordinal);

    /// <summary>No config_path: every namespace gets its default host.</summary>
    public RegistryHosts()
        : this((string?)null)
    {
    }

    /// <param name="configPath">containerd's <c>config_path</c>: one directory, or several separated by ':' (tried in order).</param>
    public RegistryHosts(string? configPath)
        : this(string.IsNullOrEmpty(configPath) ? [] : configPath.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
    {
    }

    public RegistryHosts(IEnumerable<string> roots) => Roots = roots.ToArray();

    public IReadOnlyList<string> Roots { get; }

    /// <summary>
    /// Directories consulted for <paramref name="host"/> under one root, in order (containerd's hostPaths
    /// on Unix): <c>host_port_</c> when there is a port, <c>host:port</c>, then <c>_default</c>.
    /// </summary>
    public static IReadOnlyList<string> DirectoryCandidates(string root, string host)
    {
        var candidates = new List<string>(3);
        string underscored = HostDirectoryName(host);
        if (underscored != host) candidates.Add(Path.Join(root, underscored));
        candidates.Add(Path.Join(root, host));
        candidates.Add(Path.Join(root, DefaultDirectory));
        return candidates;
    }

    /// <summary>The hosts to try for <paramref name="registryHost"/>, mirrors first and the server last.</summary>
    /// <exception cref="Hull.Core.HullException">FailedPrecondition when the matching hosts.toml is invalid.</exception>
    public IReadOnlyList<RegistryHost> Resolve(string registryHost)
    {
        ArgumentException.ThrowIfNullOrEmpty(registryHost);
        List<RegistryHost> hosts = FindHostDirectory(registryHost) is { } dir ? LoadDirectory(dir) : [new RegistryHost("", "", "", HostCapabilities.All)];

        // An empty host is "the server was not configured": use the namespace itself.
        if (hosts.Count > 0 && hosts[^1].Host.Length == 0)
            hosts[^1] = DefaultServer(hosts[^1], registryHost);

        for (int i = 0; i < hosts.Count; i++)
        {
            RegistryHost h = hosts[i];
            bool explicitTls = h.CaCertificates.Count > 0 || h.ClientCertificates.Count > 0 || h.SkipVerify is not null;
            // containerd: an http host with TLS settings tries HTTPS first unless the port says plain HTTP.
            if (h.Scheme == "http" && explicitTls && Port(h.Host) != "80")
                hosts[i] = h with { Scheme = "https", HttpFallback = true };
        }
        return hosts;
    }

    /// <summary>True for <c>localhost</c> and loopback addresses, with or without a port (containerd's docker.IsLocalhost).</summary>
    public static bool IsLocalhost(string host)
    {
        string name = HostWithoutPort(host);
        if (name == "localhost") return true;
        return IPAddress.TryParse(name.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip);
    }

    private string? FindHostDirectory(string registryHost)
    {
        foreach (string root in Roots)
        {
            foreach (string candidate in DirectoryCandidates(root, registryHost))
            {
                if (Directory.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    private List<RegistryHost> LoadDirectory(string dir)
    {
        string file = Path.Join(dir, HostsFile.FileName);
        var info = new FileInfo(file);
        if (!info.Exists || info.Length == 0) return LoadCertificateFiles(dir);

        // Keyed on mtime and size so an edit is seen on the next resolve without re-parsing every time.
        var stamp = (info.LastWriteTimeUtc, info.Length);
        if (_files.TryGetValue(file, out CachedFile? cached) && cached.Stamp == stamp)
            return [.. cached.Hosts];

        IReadOnlyList<RegistryHost> parsed = HostsFile.Load(file);
        _files[file] = new CachedFile(stamp, parsed);
        return [.. parsed];
    }

    // Docker's certs.d layout, used when a host directory has no hosts.toml:
    // *.crt are CAs, *.cert are client certificates with an optional *.key beside them.
    private static List<RegistryHost> LoadCertificateFiles(string dir)
    {
        var cas = new List<string>();
        var clients = new List<ClientCertificatePair>();
        foreach (string file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
        {
            if (file.EndsWith(".crt", StringComparison.Ordinal)) cas.Add(file);
            if (file.EndsWith(".cert", StringComparison.Ordinal))
            {
                string key = file[..^".cert".Length] + ".key";
                clients.Add(new ClientCertificatePair(file, File.Exists(key) ? key : null));
            }
        }
        return [new RegistryHost("", "", "", HostCapabilities.All) { CaCertificates = cas, ClientCertificates = clients }];
    }

    private static RegistryHost DefaultServer(RegistryHost configured, string registryHost)
    {
        RegistryHost server;
        if (registryHost == DockerHubDomain)
        {
            server = configured with { Scheme = "https", Host = DockerHubApiHost };
        }
        else if (IsLocalhost(registryHost))
        {
            string port = Port(registryHost);
            // Port 443 or none means HTTPS; any other port is ambiguous, so HTTP with an HTTPS attempt first
            // (the skip_verify makes it "explicit TLS", which turns on the fallback above).
            server = port is "" or "443"
                ? configured with { Scheme = "https", Host = registryHost }
                : configured with { Scheme = "http", Host = registryHost };
            if (port != "80") server = server with { SkipVerify = true };
        }
        else
        {
            server = configured with { Scheme = "https", Host = registryHost };
        }
        return server with { Path = "/v2", Capabilities = HostCapabilities.All };
    }

    // containerd's hostDirectory: "host:port" → "host_port_".
    private static string HostDirectoryName(string host)
    {
        int colon = host.LastIndexOf(':');
        return colon > 0 ? host[..colon] + "_" + host[(colon + 1)..] + "_" : host;
    }

    // "host:port", "[v6]:port" → port; "host", "[v6]" and a bare "::1" have none.
    internal static string Port(string host)
    {
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']');
            return close > 0 && close + 1 < host.Length && host[close + 1] == ':' ? host[(close + 2)..] : "";
        }
        int colon = host.IndexOf(':');
        return colon >= 0 && colon == host.LastIndexOf(':') ? host[(colon + 1)..] : "";
    }

    private static string HostWithoutPort(string host)
    {
        string port = Port(host);
        return port.Length == 0 ? host : host[..(host.Length - port.Length - 1)];
    }

    private sealed record CachedFile((DateTime, long) Stamp, IReadOnlyList<RegistryHost> Hosts);
}
