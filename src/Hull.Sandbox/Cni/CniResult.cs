using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hull.Sandbox.Cni;

/// <summary>
/// A plugin's ADD result, read from every spec version in use: 1.0 (<c>ips</c> without <c>version</c>),
/// 0.3.x/0.4 (<c>ips[].version</c> "4"/"6") and 0.1/0.2 (<c>ip4</c>/<c>ip6</c>). <see cref="Raw"/> is the result as
/// the plugin wrote it, which is what the next plugin gets as <c>prevResult</c> and what the cache keeps.
/// </summary>
public sealed record CniResult(
    string CniVersion,
    IReadOnlyList<CniInterface> Interfaces,
    IReadOnlyList<CniIpConfig> Ips,
    IReadOnlyList<CniRoute> Routes,
    CniDns Dns)
{
    public JsonObject Raw { get; init; } = new();

    /// <summary>Parses a result; <paramref name="defaultVersion"/> (the config's) stands in for a missing <c>cniVersion</c>.</summary>
    /// <exception cref="FormatException">The JSON is not a CNI result.</exception>
    public static CniResult Parse(JsonObject raw, string defaultVersion)
    {
        try
        {
            string version = raw["cniVersion"]?.GetValue<string>() is { Length: > 0 } v ? v : defaultVersion;
            var interfaces = new List<CniInterface>();
            if (raw["interfaces"] is JsonArray ifs)
                foreach (var i in ifs.OfType<JsonObject>())
                    interfaces.Add(new CniInterface(Str(i, "name") ?? "", Str(i, "mac"), Str(i, "sandbox"), Int(i, "mtu")));

            var ips = new List<CniIpConfig>();
            var routes = new List<CniRoute>();
            if (raw["ips"] is JsonArray ipArray)
            {
                foreach (var ip in ipArray.OfType<JsonObject>())
                {
                    var (address, prefix) = ParseCidr(Str(ip, "address") ?? throw new FormatException("an ips entry has no address"));
                    ips.Add(new CniIpConfig(address, prefix, ParseIp(Str(ip, "gateway")), Int(ip, "interface")));
                }
            }
            else
            {
                // 0.1.0 / 0.2.0: one ip4 and one ip6 block, each with its own routes.
                foreach (var key in (string[])["ip4", "ip6"])
                {
                    if (raw[key] is not JsonObject block) continue;
                    var (address, prefix) = ParseCidr(Str(block, "ip") ?? throw new FormatException($"{key} has no ip"));
                    ips.Add(new CniIpConfig(address, prefix, ParseIp(Str(block, "gateway")), null));
                    routes.AddRange(ParseRoutes(block["routes"]));
                }
            }
            routes.AddRange(ParseRoutes(raw["routes"]));

            var dns = raw["dns"] is JsonObject d
                ? new CniDns(Strings(d["nameservers"]), Str(d, "domain"), Strings(d["search"]), Strings(d["options"]))
                : new CniDns([], null, [], []);
            return new CniResult(version, interfaces, ips, routes, dns) { Raw = raw };
        }
        catch (Exception e) when (e is InvalidOperationException or JsonException)
        {
            throw new FormatException($"not a CNI result: {e.Message}", e);
        }
    }

    /// <summary>The IPs that belong to interface <paramref name="interfaceName"/> in the sandbox (or to no interface in particular).</summary>
    public IReadOnlyList<CniIpConfig> IpsOf(string interfaceName) =>
        Ips.Where(ip => ip.Interface is not { } index ||
                        (index >= 0 && index < Interfaces.Count && Interfaces[index].Name == interfaceName)).ToList();

    private static IEnumerable<CniRoute> ParseRoutes(JsonNode? node)
    {
        if (node is not JsonArray array) yield break;
        foreach (var r in array.OfType<JsonObject>())
        {
            var (dst, prefix) = ParseCidr(Str(r, "dst") ?? throw new FormatException("a route has no dst"));
            yield return new CniRoute(dst, prefix, ParseIp(Str(r, "gw")));
        }
    }

    internal static (IPAddress Address, int PrefixLength) ParseCidr(string cidr)
    {
        int slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) ||
            !int.TryParse(cidr.AsSpan(slash + 1), out int prefix) || prefix < 0 ||
            prefix > (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128))
            throw new FormatException($"\"{cidr}\" is not an address/prefix");
        return (address, prefix);
    }

    private static IPAddress? ParseIp(string? s) =>
        string.IsNullOrEmpty(s) ? null : IPAddress.TryParse(s, out var ip) ? ip : throw new FormatException($"\"{s}\" is not an IP address");

    private static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    private static int? Int(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;
    private static IReadOnlyList<string> Strings(JsonNode? node) =>
        node is JsonArray a ? a.Select(n => n?.GetValue<string>()).OfType<string>().ToList() : [];
}

/// <summary>An interface a plugin created or configured; <see cref="Sandbox"/> is the netns path when it is inside the pod.</summary>
public sealed record CniInterface(string Name, string? Mac, string? Sandbox, int? Mtu);

/// <summary>An address with its prefix length (host bits kept), gateway and the index into <see cref="CniResult.Interfaces"/>.</summary>
public sealed record CniIpConfig(IPAddress Address, int PrefixLength, IPAddress? Gateway, int? Interface)
{
    public override string ToString() => $"{Address}/{PrefixLength}";
}

public sealed record CniRoute(IPAddress Destination, int PrefixLength, IPAddress? Gateway);

public sealed record CniDns(IReadOnlyList<string> Nameservers, string? Domain, IReadOnlyList<string> Search, IReadOnlyList<string> Options);
