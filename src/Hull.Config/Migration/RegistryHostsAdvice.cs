using System.Text;
using Hull.Config.Schema;
using Hull.Config.TomlFiles;
using Tomlyn.Model;

namespace Hull.Config.Migration;

/// <summary>
/// Hull reads registry mirrors only from hosts.toml files (containerd's <c>config_path</c> layout).
/// For a containerd 1.x <c>registry.mirrors</c> table this writes out the hosts.toml files that say the same.
/// </summary>
internal static class RegistryHostsAdvice
{
    public const string DefaultHostsDir = "/etc/containerd/certs.d";

    /// <summary>The warning for a non-empty <c>registry.mirrors</c> table inside <paramref name="registry"/>.</summary>
    public static string? ForMirrors(object mirrors, TomlTable registry, string path)
    {
        if (mirrors is not TomlTable table)
        {
            return null;
        }

        string configured = registry.TryGetValue<string>("config_path", out var configPath) ? configPath : "";
        string dir = configured.Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? DefaultHostsDir;
        var sb = new StringBuilder($"`{path}` is not supported by Hull and is ignored: Hull reads registry mirrors from hosts.toml files. To keep these mirrors, ");
        sb.Append(configured.Length == 0
            ? $"set `config_path = \"{dir}\"` in [plugins.\"{ConfigSchema.ImagesPlugin}\".registry] and create"
            : "create");
        foreach (var file in HostsFiles(table, dir))
        {
            sb.Append("\n  ").Append(file.Path).Append(':');
            foreach (string line in file.Content.TrimEnd('\n').Split('\n'))
            {
                sb.Append('\n').Append(line.Length == 0 ? "" : "    " + line);
            }
        }

        return sb.ToString();
    }

    /// <summary>One hosts.toml per mirrored registry: <c>server</c> is the registry, each endpoint a <c>[host]</c> tried first.</summary>
    public static IReadOnlyList<(string Path, string Content)> HostsFiles(TomlTable mirrors, string dir)
    {
        var files = new List<(string, string)>();
        foreach (var (registry, value) in mirrors)
        {
            var endpoints = value is TomlTable mirror && mirror.TryGetValue<TomlArray>("endpoint", out var list)
                ? list.OfType<string>().ToList()
                : [];
            string host = registry == "*" ? "_default" : registry;
            string? server = registry switch
            {
                "*" => null,
                "docker.io" => "https://registry-1.docker.io",
                _ => "https://" + registry,
            };
            var content = new StringBuilder();
            if (server is not null)
            {
                content.Append("server = ").Append(TomlText.FormatValue(server)).Append('\n');
            }

            foreach (string endpoint in endpoints.Where(e => e.TrimEnd('/') != server))
            {
                content.Append('\n').Append("[host.").Append(TomlText.FormatValue(endpoint)).Append("]\n")
                    .Append("  capabilities = [\"pull\", \"resolve\"]\n");
            }

            files.Add(($"{dir.TrimEnd('/')}/{host}/hosts.toml", content.ToString()));
        }

        return files;
    }
}
