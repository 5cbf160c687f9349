using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hull.Sandbox.Cni;

/// <summary>
/// A CNI network configuration list (a <c>.conflist</c>, or a single-plugin <c>.conf</c>/<c>.json</c> wrapped into one,
/// as libcni's ConfListFromConf does). <see cref="Bytes"/> is the list as a whole, what the result cache stores so a
/// later DEL or CHECK runs with exactly the configuration ADD used.
/// </summary>
public sealed class CniNetworkList
{
    /// <summary>The spec versions a configuration may name.</summary>
    public static readonly IReadOnlyList<string> KnownVersions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>The extensions libcni loads from a configuration directory.</summary>
    public static readonly IReadOnlyList<string> Extensions = [".conf", ".conflist", ".json"];

    private CniNetworkList(string name, string cniVersion, bool disableCheck, IReadOnlyList<CniPluginConfig> plugins, byte[] bytes, string source)
    {
        Name = name;
        CniVersion = cniVersion;
        DisableCheck = disableCheck;
        Plugins = plugins;
        Bytes = bytes;
        Source = source;
    }

    public string Name { get; }
    public string CniVersion { get; }
    public bool DisableCheck { get; }
    public IReadOnlyList<CniPluginConfig> Plugins { get; }
    public byte[] Bytes { get; }
    /// <summary>Where it came from (a file path, "cache" or "builtin"), for error messages.</summary>
    public string Source { get; }

    /// <summary>Loads one file from a configuration directory: <c>.conflist</c> as a list, anything else as one plugin.</summary>
    /// <exception cref="FormatException">The file is not a usable configuration; the message says why.</exception>
    public static CniNetworkList Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return path.EndsWith(".conflist", StringComparison.Ordinal) ? ParseList(bytes, path) : ParseSingle(bytes, path);
    }

    /// <summary>Parses a configuration list (<c>{"name", "cniVersion", "plugins": [...]}</c>).</summary>
    public static CniNetworkList ParseList(byte[] bytes, string source)
    {
        var root = ParseObject(bytes);
        string name = RequiredString(root, "name", "a network list");
        if (!IsValidName(name)) throw new FormatException($"network name \"{name}\" is not valid: letters, digits, '_', '.', '-', starting with a letter or digit");
        string version = OptionalString(root, "cniVersion") ?? "";
        CheckVersion(version);
        bool disableCheck = root["disableCheck"] switch
        {
            null => false,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            JsonValue v when v.TryGetValue<string>(out var s) && bool.TryParse(s, out var b) => b,
            _ => throw new FormatException("\"disableCheck\" is not a boolean"),
        };
        if (root["plugins"] is not JsonArray plugins) throw new FormatException("\"plugins\" is missing or not an array");
        if (plugins.Count == 0) throw new FormatException("\"plugins\" is empty");
        var list = new List<CniPluginConfig>();
        for (int i = 0; i < plugins.Count; i++)
        {
            if (plugins[i] is not JsonObject plugin) throw new FormatException($"plugins[{i}] is not an object");
            list.Add(CniPluginConfig.From(plugin, $"plugins[{i}]"));
        }
        return new CniNetworkList(name, version, disableCheck, list, bytes, source);
    }

    /// <summary>Parses one plugin's configuration and wraps it into a list of its own name and version.</summary>
    public static CniNetworkList ParseSingle(byte[] bytes, string source)
    {
        var root = ParseObject(bytes);
        if (root["plugins"] is not null) throw new FormatException("has \"plugins\": a configuration list must be named *.conflist");
        string name = RequiredString(root, "name", "a network configuration");
        var plugin = CniPluginConfig.From(root, "the configuration");
        var wrapped = new JsonObject
        {
            ["cniVersion"] = OptionalString(root, "cniVersion") ?? "",
            ["name"] = name,
            ["plugins"] = new JsonArray(root.DeepClone()),
        };
        var list = ParseList(Encoding.UTF8.GetBytes(wrapped.ToJsonString()), source);
        return list.Plugins.Count == 1 && list.Plugins[0].Type == plugin.Type ? list : throw new FormatException("cannot wrap the configuration");
    }

    /// <summary>Whether the list's version is at least <paramref name="version"/> (CHECK and DEL's prevResult need 0.4.0).</summary>
    public bool VersionAtLeast(string version) => CompareVersions(CniVersion.Length == 0 ? "0.1.0" : CniVersion, version) >= 0;

    /// <summary>libcni's ValidateNetworkName (the name is part of cache and IPAM file names).</summary>
    internal static bool IsValidName(string name) =>
        name.Length > 0 && char.IsAsciiLetterOrDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    internal static int CompareVersions(string a, string b)
    {
        var pa = a.Split('.').Select(s => int.TryParse(s, out int n) ? n : 0).ToArray();
        var pb = b.Split('.').Select(s => int.TryParse(s, out int n) ? n : 0).ToArray();
        for (int i = 0; i < Math.Max(pa.Length, pb.Length); i++)
        {
            int x = i < pa.Length ? pa[i] : 0, y = i < pb.Length ? pb[i] : 0;
            if (x != y) return x.CompareTo(y);
        }
        return 0;
    }

    private static void CheckVersion(string version)
    {
        if (version.Length == 0) return; // libcni treats a missing version as 0.1.0
        var parts = version.Split('.');
        if (parts.Length != 3 || parts.Any(p => !int.TryParse(p, out _)))
            throw new FormatException($"\"cniVersion\" \"{version}\" is not a version");
    }

    private static JsonObject ParseObject(byte[] bytes)
    {
        try
        {
            return JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                   ?? throw new FormatException("is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException($"is not valid JSON: {e.Message}", e);
        }
    }

    internal static string? OptionalString(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw new FormatException($"\"{key}\" is not a string"),
    };

    private static string RequiredString(JsonObject o, string key, string what) =>
        OptionalString(o, key) is { Length: > 0 } s ? s : throw new FormatException($"{what} has no \"{key}\"");
}

/// <summary>One plugin of a list: its <c>type</c> (the binary), the capabilities it declares, and its JSON as written.</summary>
public sealed class CniPluginConfig
{
    private CniPluginConfig(string type, IReadOnlySet<string> capabilities, JsonObject json)
    {
        Type = type;
        Capabilities = capabilities;
        Json = json;
    }

    public string Type { get; }
    /// <summary>Capabilities set to true in the plugin's <c>capabilities</c> map.</summary>
    public IReadOnlySet<string> Capabilities { get; }
    private JsonObject Json { get; }

    internal static CniPluginConfig From(JsonObject json, string what)
    {
        string type = CniNetworkList.OptionalString(json, "type") is { Length: > 0 } t ? t : throw new FormatException($"{what} has no \"type\"");
        if (type.Contains('/') || type is "." or "..") throw new FormatException($"{what} has \"type\" \"{type}\", which is not a plugin name");
        var caps = new HashSet<string>(StringComparer.Ordinal);
        if (json["capabilities"] is JsonObject c)
            foreach (var (key, value) in c)
                if (value is JsonValue v && v.TryGetValue<bool>(out var on) && on) caps.Add(key);
        return new CniPluginConfig(type, caps, (JsonObject)json.DeepClone());
    }

    /// <summary>
    /// The plugin's stdin, built as libcni's buildOneConfig does: the list's name and version injected, the previous
    /// result as <c>prevResult</c>, and <c>runtimeConfig</c> holding the capability arguments this plugin declares.
    /// </summary>
    public byte[] BuildStdin(string networkName, string cniVersion, JsonObject? prevResult, JsonObject capabilityArgs)
    {
        var conf = (JsonObject)Json.DeepClone();
        conf["name"] = networkName;
        conf["cniVersion"] = cniVersion;
        if (prevResult is not null) conf["prevResult"] = prevResult.DeepClone();
        var runtimeConfig = new JsonObject();
        foreach (var (key, value) in capabilityArgs)
            if (Capabilities.Contains(key)) runtimeConfig[key] = value?.DeepClone();
        if (runtimeConfig.Count > 0) conf["runtimeConfig"] = runtimeConfig;
        return Encoding.UTF8.GetBytes(conf.ToJsonString());
    }
}
