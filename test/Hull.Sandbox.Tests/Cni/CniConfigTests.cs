using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.Cni;

public sealed class CniConfigTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string BridgeList = """
        {
          "cniVersion": "1.0.0", "name": "hull",
          "plugins": [
            { "type": "bridge", "bridge": "hull0", "ipam": { "type": "host-local" } },
            { "type": "portmap", "capabilities": { "portMappings": true, "bandwidth": false }, "snat": true }
          ]
        }
        """;

    [Fact]
    public void A_conflist_is_read_with_its_plugins_and_declared_capabilities()
    {
        var list = CniNetworkList.ParseList(Encoding.UTF8.GetBytes(BridgeList), "test");

        Assert.Equal("hull", list.Name);
        Assert.Equal("1.0.0", list.CniVersion);
        Assert.False(list.DisableCheck);
        Assert.Equal(["bridge", "portmap"], list.Plugins.Select(p => p.Type));
        Assert.Empty(list.Plugins[0].Capabilities);
        Assert.Equal(["portMappings"], list.Plugins[1].Capabilities); // false is not declared
        Assert.True(list.VersionAtLeast("0.4.0"));
    }

    [Fact]
    public void A_single_plugin_conf_is_wrapped_into_a_list_of_its_name_and_version()
    {
        var path = Path.Combine(_dir.Path, "10-one.conf");
        File.WriteAllText(path, """{ "cniVersion": "0.4.0", "name": "one", "type": "bridge", "bridge": "x0" }""");

        var list = CniNetworkList.Load(path);

        Assert.Equal("one", list.Name);
        Assert.Equal("0.4.0", list.CniVersion);
        Assert.Equal("bridge", Assert.Single(list.Plugins).Type);
        var reparsed = CniNetworkList.ParseList(list.Bytes, "bytes"); // what the cache stores is a list
        Assert.Equal("x0", JsonNode.Parse(reparsed.Plugins[0].BuildStdin("one", "0.4.0", null, new JsonObject()))!["bridge"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{ "cniVersion": "1.0.0", "name": "n", "plugins": [ { "bridge": "x" } ] }""", "no \"type\"")]
    [InlineData("""{ "cniVersion": "1.0.0", "name": "n", "plugins": [] }""", "\"plugins\" is empty")]
    [InlineData("""{ "cniVersion": "1.0.0", "plugins": [ { "type": "bridge" } ] }""", "has no \"name\"")]
    [InlineData("""{ "cniVersion": "1.0.0", "name": "../etc", "plugins": [ { "type": "bridge" } ] }""", "network name")]
    [InlineData("""{ "cniVersion": "1.0.0", "name": "n", "plugins": [ { "type": "../../bin/sh" } ] }""", "not a plugin name")]
    [InlineData("""{ "cniVersion": "one", "name": "n", "plugins": [ { "type": "bridge" } ] }""", "not a version")]
    [InlineData("""{ "name": "n", "plugins": """, "not valid JSON")]
    public void A_broken_list_is_refused_with_the_reason(string json, string reason)
    {
        var e = Assert.Throws<FormatException>(() => CniNetworkList.ParseList(Encoding.UTF8.GetBytes(json), "test"));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Plugin_stdin_gets_name_version_prevResult_and_only_the_capabilities_it_declares()
    {
        var list = CniNetworkList.ParseList(Encoding.UTF8.GetBytes(BridgeList), "test");
        var caps = new JsonObject
        {
            ["portMappings"] = new JsonArray(new JsonObject { ["hostPort"] = 8080, ["containerPort"] = 80, ["protocol"] = "tcp", ["hostIP"] = "" }),
            ["bandwidth"] = new JsonObject { ["ingressRate"] = 1000 },
        };
        var prev = new JsonObject { ["cniVersion"] = "1.0.0", ["ips"] = new JsonArray() };

        var bridge = JsonNode.Parse(list.Plugins[0].BuildStdin("hull", "1.0.0", null, caps))!.AsObject();
        var portmap = JsonNode.Parse(list.Plugins[1].BuildStdin("hull", "1.0.0", prev, caps))!.AsObject();

        Assert.Equal("hull", bridge["name"]!.GetValue<string>());
        Assert.Equal("1.0.0", bridge["cniVersion"]!.GetValue<string>());
        Assert.Null(bridge["prevResult"]);
        Assert.Null(bridge["runtimeConfig"]);
        Assert.Equal("hull0", bridge["bridge"]!.GetValue<string>());
        Assert.NotNull(portmap["prevResult"]);
        var runtimeConfig = portmap["runtimeConfig"]!.AsObject();
        Assert.Equal(["portMappings"], runtimeConfig.Select(kv => kv.Key));
        Assert.Equal(8080, runtimeConfig["portMappings"]![0]!["hostPort"]!.GetValue<int>());
        Assert.True(portmap["snat"]!.GetValue<bool>());
    }

    [Fact]
    public void NetworkReady_follows_the_conf_dir_without_a_restart()
    {
        var confDir = _dir.Sub("net.d");
        var watcher = new CniConfigWatcher(confDir, maxConfNum: 1);

        var missing = watcher.Status();
        Assert.False(missing.NetworkReady);
        Assert.Equal("NetworkPluginNotReady", missing.Reason);
        Assert.Contains("cni plugin not initialized", missing.Message);

        Directory.CreateDirectory(confDir);
        File.WriteAllText(Path.Combine(confDir, "README"), "not a config");
        Assert.False(watcher.Status().NetworkReady);

        File.WriteAllText(Path.Combine(confDir, "20-b.conflist"), BridgeList.Replace("\"hull\"", "\"b\""));
        Assert.True(watcher.Status().NetworkReady);
        Assert.Equal("b", Assert.Single(watcher.Current().Networks).Name);

        File.WriteAllText(Path.Combine(confDir, "10-a.conflist"), BridgeList.Replace("\"hull\"", "\"a\""));
        Assert.Equal("a", Assert.Single(watcher.Current().Networks).Name); // the first by name wins

        File.WriteAllText(Path.Combine(confDir, "05-broken.conf"), "{ \"name\": ");
        var broken = watcher.Status();
        Assert.False(broken.NetworkReady);
        Assert.Contains("05-broken.conf", broken.Message);

        File.Delete(Path.Combine(confDir, "05-broken.conf"));
        Assert.True(watcher.Status().NetworkReady);
        Assert.Equal(["a", "b"], new CniConfigWatcher(confDir, maxConfNum: 0).Current().Networks.Select(n => n.Name));
    }

    [Fact]
    public void Results_of_every_spec_version_are_read()
    {
        var v1 = CniResult.Parse(JsonNode.Parse("""
            { "cniVersion": "1.0.0",
              "interfaces": [ { "name": "hull0", "mac": "aa" }, { "name": "veth1" }, { "name": "eth0", "mac": "bb", "sandbox": "/run/ns" } ],
              "ips": [ { "interface": 2, "address": "10.88.0.5/16", "gateway": "10.88.0.1" },
                       { "interface": 2, "address": "fd00::5/64" },
                       { "interface": 0, "address": "10.88.0.1/16" } ],
              "routes": [ { "dst": "0.0.0.0/0", "gw": "10.88.0.1" } ],
              "dns": { "nameservers": [ "10.0.0.10" ], "search": [ "svc" ] } }
            """)!.AsObject(), "1.0.0");
        Assert.Equal(3, v1.Interfaces.Count);
        Assert.Equal("/run/ns", v1.Interfaces[2].Sandbox);
        Assert.Equal(["10.88.0.5/16", "fd00::5/64"], v1.IpsOf("eth0").Select(i => i.ToString()));
        Assert.Equal(IPAddress.Parse("10.88.0.1"), v1.Ips[0].Gateway);
        Assert.Equal(0, Assert.Single(v1.Routes).PrefixLength);
        Assert.Equal(["10.0.0.10"], v1.Dns.Nameservers);

        var v04 = CniResult.Parse(JsonNode.Parse("""
            { "cniVersion": "0.4.0", "interfaces": [ { "name": "lo", "sandbox": "/x" } ],
              "ips": [ { "version": "4", "interface": 0, "address": "127.0.0.1/8" }, { "version": "6", "interface": 0, "address": "::1/128" } ],
              "dns": {} }
            """)!.AsObject(), "0.4.0");
        Assert.Equal(["127.0.0.1/8", "::1/128"], v04.IpsOf("lo").Select(i => i.ToString()));

        var v02 = CniResult.Parse(JsonNode.Parse("""
            { "cniVersion": "0.2.0", "ip4": { "ip": "10.1.0.2/24", "gateway": "10.1.0.1", "routes": [ { "dst": "0.0.0.0/0" } ] } }
            """)!.AsObject(), "0.2.0");
        Assert.Equal("10.1.0.2/24", Assert.Single(v02.IpsOf("eth0")).ToString());
        Assert.Single(v02.Routes);

        Assert.Throws<FormatException>(() => CniResult.Parse(JsonNode.Parse("""{ "ips": [ { "address": "nope" } ] }""")!.AsObject(), "1.0.0"));
    }

    [Theory]
    [InlineData("", "10.0.0.2,fd00::2,10.0.0.3")]
    [InlineData("ipv4", "10.0.0.2,fd00::2,10.0.0.3")]
    [InlineData("ipv6", "fd00::2,10.0.0.2,10.0.0.3")]
    [InlineData("cni", "fd00::2,10.0.0.2,10.0.0.3")]
    public void Pod_IPs_put_the_preferred_family_first(string preference, string expected)
    {
        var ips = new[] { "fd00::2", "10.0.0.2", "10.0.0.3" }.Select(a => new CniIpConfig(IPAddress.Parse(a), 24, null, 0)).ToList();
        Assert.Equal(expected, string.Join(',', CniManager.SelectPodIps(ips, preference).Select(a => a.ToString())));
    }

    [Fact]
    public void The_cache_is_libcni_format_and_round_trips()
    {
        var cache = new CniResultCache(_dir.Path);
        var list = CniNetworkList.ParseList(Encoding.UTF8.GetBytes(BridgeList), "test");
        var result = CniResult.Parse(JsonNode.Parse("""{ "cniVersion": "1.0.0", "ips": [ { "address": "10.88.0.9/16" } ] }""")!.AsObject(), "1.0.0");
        var caps = new JsonObject { ["portMappings"] = new JsonArray() };
        cache.Write(new CniCachedAttachment("sb1", "hull", "eth0", "/run/hull/ns/net/sb1", list,
            [new("IgnoreUnknown", "1"), new("K8S_POD_NAME", "p")], caps, result));

        var path = Path.Combine(_dir.Path, "results", "hull-sb1-eth0");
        var raw = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal("cniCacheV1", raw["kind"]!.GetValue<string>());
        Assert.Equal("sb1", raw["containerId"]!.GetValue<string>());
        Assert.Equal(BridgeList, Encoding.UTF8.GetString(Convert.FromBase64String(raw["config"]!.GetValue<string>())));
        Assert.Equal("eth0", raw["ifName"]!.GetValue<string>());
        Assert.Equal("hull", raw["networkName"]!.GetValue<string>());
        Assert.Equal("/run/hull/ns/net/sb1", raw["netns"]!.GetValue<string>());
        Assert.Equal("K8S_POD_NAME", raw["cniArgs"]![1]![0]!.GetValue<string>());
        Assert.Equal("10.88.0.9/16", raw["result"]!["ips"]![0]!["address"]!.GetValue<string>());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        var back = Assert.Single(cache.ReadAll("sb1"));
        Assert.Equal("hull", back.Config.Name);
        Assert.Equal(2, back.Config.Plugins.Count);
        Assert.Equal("p", back.CniArgs[1].Value);
        Assert.Equal("10.88.0.9", back.Result!.Ips[0].Address.ToString());
        Assert.Empty(cache.ReadAll("sb"));   // a prefix of another id is not that id
        Assert.Null(cache.Read("hull", "sb2", "eth0"));
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(_dir.Path, "results")), f => f.EndsWith(".tmp"));
    }
}
