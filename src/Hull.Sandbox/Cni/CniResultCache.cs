using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Linux;

namespace Hull.Sandbox.Cni;

/// <summary>One cached attachment: everything a later CHECK or DEL needs, as ADD used it.</summary>
public sealed record CniCachedAttachment(
    string ContainerId,
    string NetworkName,
    string InterfaceName,
    string NetNs,
    CniNetworkList Config,
    IReadOnlyList<KeyValuePair<string, string>> CniArgs,
    JsonObject CapabilityArgs,
    CniResult? Result);

/// <summary>
/// The result cache, in libcni's on-disk format (<c>kind: cniCacheV1</c>, the list's bytes base64 in <c>config</c>,
/// <c>cniArgs</c> as pairs, <c>capabilityArgs</c>, <c>result</c>) at <c>&lt;dir&gt;/results/&lt;network&gt;-&lt;container id&gt;-&lt;ifname&gt;</c>,
/// so tools that read libcni's cache read Hull's too. Written by temp file + fsync + rename.
/// </summary>
public sealed class CniResultCache(string directory)
{
    public const string KindV1 = "cniCacheV1";

    public string ResultsDirectory { get; } = Path.Combine(directory, "results");

    public string PathOf(string networkName, string containerId, string interfaceName) =>
        Path.Combine(ResultsDirectory, $"{networkName}-{containerId}-{interfaceName}");

    public void Write(CniCachedAttachment a)
    {
        var json = new JsonObject
        {
            ["kind"] = KindV1,
            ["containerId"] = a.ContainerId,
            ["config"] = Convert.ToBase64String(a.Config.Bytes),
            ["ifName"] = a.InterfaceName,
            ["networkName"] = a.NetworkName,
        };
        if (a.NetNs.Length > 0) json["netns"] = a.NetNs;
        if (a.CniArgs.Count > 0) json["cniArgs"] = new JsonArray(a.CniArgs.Select(kv => (JsonNode)new JsonArray(kv.Key, kv.Value)).ToArray());
        if (a.CapabilityArgs.Count > 0) json["capabilityArgs"] = a.CapabilityArgs.DeepClone();
        if (a.Result is not null) json["result"] = a.Result.Raw.DeepClone();

        Directory.CreateDirectory(ResultsDirectory);
        string path = PathOf(a.NetworkName, a.ContainerId, a.InterfaceName);
        AtomicFile.WriteText(path, json.ToJsonString());
    }

    /// <summary>The cached attachment, or null when there is none or it is not a cache entry Hull can use.</summary>
    /// <exception cref="FormatException">The file exists but is damaged; the message says how.</exception>
    public CniCachedAttachment? Read(string networkName, string containerId, string interfaceName)
    {
        string path = PathOf(networkName, containerId, interfaceName);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        return Parse(bytes, path);
    }

    /// <summary>Every cached attachment of <paramref name="containerId"/>, by file name; damaged entries are skipped.</summary>
    public IReadOnlyList<CniCachedAttachment> ReadAll(string containerId)
    {
        if (!Directory.Exists(ResultsDirectory)) return [];
        var found = new List<CniCachedAttachment>();
        foreach (var file in Directory.EnumerateFiles(ResultsDirectory, $"*-{containerId}-*").Order(StringComparer.Ordinal))
        {
            if (file.EndsWith(AtomicFile.TempSuffix, StringComparison.Ordinal)) continue;
            try
            {
                if (Parse(File.ReadAllBytes(file), file) is { } a && a.ContainerId == containerId) found.Add(a);
            }
            catch (Exception e) when (e is FormatException or IOException) { }
        }
        return found;
    }

    public void Delete(string networkName, string containerId, string interfaceName) =>
        File.Delete(PathOf(networkName, containerId, interfaceName));

    private static CniCachedAttachment? Parse(byte[] bytes, string path)
    {
        try
        {
            if (JsonNode.Parse(bytes) is not JsonObject o) throw new FormatException("not a JSON object");
            if (o["kind"]?.GetValue<string>() != KindV1) return null; // a pre-0.8 libcni bare result: nothing to run DEL with
            string containerId = o["containerId"]?.GetValue<string>() ?? throw new FormatException("no containerId");
            string network = o["networkName"]?.GetValue<string>() ?? throw new FormatException("no networkName");
            string ifName = o["ifName"]?.GetValue<string>() ?? throw new FormatException("no ifName");
            var configBytes = Convert.FromBase64String(o["config"]?.GetValue<string>() ?? throw new FormatException("no config"));
            var config = CniNetworkList.ParseList(configBytes, $"cache {path}");
            var args = new List<KeyValuePair<string, string>>();
            if (o["cniArgs"] is JsonArray pairs)
                foreach (var p in pairs.OfType<JsonArray>())
                    if (p.Count == 2) args.Add(new(p[0]?.GetValue<string>() ?? "", p[1]?.GetValue<string>() ?? ""));
            var caps = o["capabilityArgs"] is JsonObject c ? (JsonObject)c.DeepClone() : new JsonObject();
            var result = o["result"] is JsonObject r ? CniResult.Parse((JsonObject)r.DeepClone(), config.CniVersion) : null;
            return new CniCachedAttachment(containerId, network, ifName, o["netns"]?.GetValue<string>() ?? "", config, args, caps, result);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FormatException($"CNI cache file \"{path}\" is damaged: {e.Message}", e);
        }
        catch (FormatException e) when (!e.Message.StartsWith("CNI cache file", StringComparison.Ordinal))
        {
            throw new FormatException($"CNI cache file \"{path}\" is damaged: {e.Message}", e);
        }
    }
}
