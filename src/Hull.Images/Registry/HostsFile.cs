using System.Text;
using Hull.Core;
using Tomlyn;
using Tomlyn.Model;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Hull.Images.Registry;

/// <summary>
/// Reads one <c>hosts.toml</c> the way containerd's <c>core/remotes/docker/config</c> does: the
/// <c>[host."..."]</c> entries in file order, then the <c>server</c> (with the root-level settings)
/// last. A server that is not configured comes back with an empty <see cref="RegistryHost.Host"/>;
/// <see cref="RegistryHosts"/> fills in the default for the namespace.
/// </summary>
public static class HostsFile
{
    public const string FileName = "hosts.toml";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses <paramref name="path"/>; relative certificate paths are relative to its directory.</summary>
    /// <exception cref="HullException">FailedPrecondition naming the file when it is not valid.</exception>
    public static IReadOnlyList<RegistryHost> Load(string path) =>
        Parse(ReadToml(path), System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, path);

    // Tomlyn's model reader applies none of TOML's rules against duplicate keys and redefined tables; its syntax
    // parser with validation does, and names the line. A hosts.toml is a few lines, read once per change, so it is
    // parsed twice: validated, then read into the model.
    private static TomlTable ReadToml(string path)
    {
        string text;
        try
        {
            text = StrictUtf8.GetString(File.ReadAllBytes(path));
        }
        catch (DecoderFallbackException)
        {
            throw Invalid(path, "not UTF-8 text");
        }

        try
        {
            var syntax = SyntaxParser.Parse(text, path, validate: true);
            if (syntax.Diagnostics.FirstOrDefault(d => d.Kind == DiagnosticMessageKind.Error) is { } error)
            {
                throw Invalid(path, $"{error.Span.Start.Line + 1}:{error.Span.Start.Column + 1}: {error.Message}");
            }

            return TomlSerializer.Deserialize<TomlTable>(text)!;
        }
        catch (TomlException e)
        {
            throw Invalid(path, e.Message);
        }
        catch (ArgumentOutOfRangeException e)
        {
            // Tomlyn 2.11's lexer throws this, instead of reporting an error, when the text ends inside a \u escape.
            throw Invalid(path, $"not valid TOML ({e.Message})");
        }
    }

    private static IReadOnlyList<RegistryHost> Parse(TomlTable root, string baseDirectory, string sourceName)
    {
        var hosts = new List<RegistryHost>();
        if (root.TryGetValue("host", out object? hostValue))
        {
            if (hostValue is not TomlTable hostTable) throw Invalid(sourceName, "\"host\" must be a table of hosts");
            foreach ((string url, object? value) in hostTable)
            {
                if (value is not TomlTable settings) throw Invalid(sourceName, $"host \"{url}\" must be a table");
                hosts.Add(ParseHost(url, settings, baseDirectory, sourceName));
            }
        }

        string server = "";
        if (root.TryGetValue("server", out object? serverValue))
            server = serverValue as string ?? throw Invalid(sourceName, "\"server\" must be a string");
        hosts.Add(ParseHost(server, root, baseDirectory, sourceName));
        return hosts;
    }

    private static RegistryHost ParseHost(string server, TomlTable settings, string baseDirectory, string sourceName)
    {
        string where = server.Length == 0 ? "server" : $"host \"{server}\"";
        bool overridePath = settings.TryGetValue("override_path", out object? op) && (op as bool? ?? throw Invalid(sourceName, $"{where}: override_path must be a boolean"));

        string scheme = "", host = "", path = "";
        if (server.Length > 0)
            (scheme, host, path) = ParseServer(server, overridePath, sourceName);

        var capabilities = HostCapabilities.All;
        if (settings.TryGetValue("capabilities", out object? capsValue))
        {
            IReadOnlyList<string> names = StringList(capsValue, sourceName, $"{where}: capabilities");
            if (names.Count > 0)
            {
                capabilities = HostCapabilities.None;
                foreach (string name in names)
                {
                    capabilities |= name.ToLowerInvariant() switch
                    {
                        "pull" => HostCapabilities.Pull,
                        "resolve" => HostCapabilities.Resolve,
                        "push" => HostCapabilities.Push,
                        _ => throw Invalid(sourceName, $"{where}: unknown capability \"{name}\""),
                    };
                }
            }
        }

        var result = new RegistryHost(scheme, host, path, capabilities);

        if (settings.TryGetValue("ca", out object? ca))
        {
            IReadOnlyList<string> files = ca is string one ? [one] : StringList(ca, sourceName, $"{where}: ca");
            result = result with { CaCertificates = files.Select(f => Absolute(f, baseDirectory)).ToArray() };
        }

        if (settings.TryGetValue("client", out object? client))
            result = result with { ClientCertificates = ClientPairs(client, baseDirectory, sourceName, where) };

        if (settings.TryGetValue("skip_verify", out object? skip))
            result = result with { SkipVerify = skip as bool? ?? throw Invalid(sourceName, $"{where}: skip_verify must be a boolean") };

        if (settings.TryGetValue("header", out object? header))
        {
            if (header is not TomlTable headerTable) throw Invalid(sourceName, $"{where}: header must be a table");
            var headers = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
            foreach ((string name, object? value) in headerTable)
                headers[name] = value is string s ? [s] : StringList(value, sourceName, $"{where}: header \"{name}\"");
            result = result with { Headers = headers };
        }

        if (settings.TryGetValue("dial_timeout", out object? dial))
        {
            if (dial is not string text || !Hull.Config.GoDuration.TryParse(text, out TimeSpan timeout, out _))
                throw Invalid(sourceName, $"{where}: dial_timeout must be a duration such as \"1s\"");
            result = result with { DialTimeout = timeout };
        }

        return result;
    }

    // Like Go's url.Parse for what hosts.toml holds: the host keeps its port as written.
    private static (string Scheme, string Host, string Path) ParseServer(string server, bool overridePath, string sourceName)
    {
        if (!server.StartsWith("http", StringComparison.Ordinal))
        {
            if (server.Contains("://", StringComparison.Ordinal)) throw Invalid(sourceName, $"server \"{server}\" must use http or https");
            server = "https://" + server;
        }
        int schemeEnd = server.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0) throw Invalid(sourceName, $"cannot parse server \"{server}\"");
        string scheme = server[..schemeEnd].ToLowerInvariant();
        if (scheme is not ("http" or "https")) throw Invalid(sourceName, $"server \"{server}\" must use http or https");

        string rest = server[(schemeEnd + 3)..];
        int end = rest.IndexOfAny(['/', '?', '#']);
        string host = end < 0 ? rest : rest[..end];
        string path = end < 0 || rest[end] != '/' ? "" : rest[end..];
        int query = path.IndexOfAny(['?', '#']);
        if (query >= 0) path = path[..query];
        if (host.Length == 0) throw Invalid(sourceName, $"server \"{server}\" has no host");

        path = CleanPath(path);
        if (path.Length > 0)
        {
            if (!path.EndsWith("/v2", StringComparison.Ordinal) && !overridePath) path += "/v2";
        }
        else if (!overridePath)
        {
            path = "/v2";
        }
        return (scheme, host, path);
    }

    // Go's path.Clean for an absolute URL path; "/" becomes "" so "https://host/" means "https://host".
    private static string CleanPath(string path)
    {
        var parts = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return parts.Count == 0 ? "" : "/" + string.Join('/', parts);
    }

    private static ClientCertificatePair[] ClientPairs(object value, string baseDirectory, string sourceName, string where)
    {
        if (value is string single) return [new ClientCertificatePair(Absolute(single, baseDirectory), null)];
        if (value is not TomlArray array) throw Invalid(sourceName, $"{where}: client must be a path, a list of paths or a list of [cert, key] pairs");

        var pairs = new List<ClientCertificatePair>();
        foreach (object? item in array)
        {
            switch (item)
            {
                case string path:
                    pairs.Add(new ClientCertificatePair(Absolute(path, baseDirectory), null));
                    break;
                case TomlArray pair:
                    IReadOnlyList<string> files = StringList(pair, sourceName, $"{where}: client pair");
                    if (files.Count != 2) throw Invalid(sourceName, $"{where}: a client pair must be [cert, key]");
                    pairs.Add(new ClientCertificatePair(
                        Absolute(files[0], baseDirectory),
                        files[1].Length == 0 ? null : Absolute(files[1], baseDirectory)));
                    break;
                default:
                    throw Invalid(sourceName, $"{where}: client entries must be paths or [cert, key] pairs");
            }
        }
        return pairs.ToArray();
    }

    private static IReadOnlyList<string> StringList(object? value, string sourceName, string what)
    {
        if (value is not TomlArray array) throw Invalid(sourceName, $"{what} must be a list of strings");
        var list = new List<string>(array.Count);
        foreach (object? item in array)
            list.Add(item as string ?? throw Invalid(sourceName, $"{what} must be a list of strings"));
        return list;
    }

    private static string Absolute(string path, string baseDirectory) =>
        System.IO.Path.IsPathRooted(path) ? path : System.IO.Path.Join(baseDirectory, path);

    private static HullException Invalid(string sourceName, string reason) =>
        new(ErrorKind.FailedPrecondition, $"registry hosts file \"{sourceName}\": {reason}");
}
