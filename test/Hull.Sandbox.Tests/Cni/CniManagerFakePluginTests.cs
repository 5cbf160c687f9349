using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.Cni;

/// <summary>
/// The protocol side of CniManager against shell-script plugins that record what they were given: no root, no
/// network changes. The real plugins are exercised in <see cref="CniBridgeTests"/>.
/// </summary>
public sealed class CniManagerFakePluginTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private string Bin => _dir.Sub("bin");
    private string Log => _dir.Sub("log");
    private string ConfDir => _dir.Sub("net.d");

    public CniManagerFakePluginTests()
    {
        Directory.CreateDirectory(Bin);
        Directory.CreateDirectory(Log);
        Directory.CreateDirectory(ConfDir);
        // Records the call, its environment and stdin; ADD prints a 1.0.0 result naming the plugin in the MAC field.
        const string recorder = """
            #!/bin/sh
            name=$(basename "$0")
            log="$(dirname "$0")/../log"
            echo "$name $CNI_COMMAND $CNI_IFNAME" >> "$log/calls"
            env | grep '^CNI_' | sort > "$log/env-$name-$CNI_COMMAND-$CNI_IFNAME"
            cat > "$log/stdin-$name-$CNI_COMMAND-$CNI_IFNAME"
            if [ "$CNI_COMMAND" = ADD ]; then
              addr=10.9.9.9/24; [ "$CNI_IFNAME" = lo ] && addr=127.0.0.1/8
              printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","mac":"%s","sandbox":"%s"}],"ips":[{"interface":0,"address":"%s"}]}' \
                "$CNI_IFNAME" "$name" "$CNI_NETNS" "$addr"
            fi
            """;
        foreach (var name in (string[])["loopback", "rec1", "rec2"]) Script(name, recorder);
        Script("fail", """
            #!/bin/sh
            echo "fail $CNI_COMMAND $CNI_IFNAME" >> "$(dirname "$0")/../log/calls"
            cat > /dev/null
            if [ "$CNI_COMMAND" = DEL ] && [ ! -e "$(dirname "$0")/../log/fail-del" ]; then exit 0; fi
            echo '{"cniVersion":"1.0.0","code":7,"msg":"bridge hull0 has the wrong subnet","details":"wanted 10.88.0.0/16"}'
            exit 1
            """);
        Script("crash", """
            #!/bin/sh
            cat > /dev/null
            echo "panic: runtime error: index out of range" >&2
            exit 2
            """);
        Script("slow", """
            #!/bin/sh
            cat > /dev/null
            [ "$CNI_COMMAND" = ADD ] && sleep 60
            exit 0
            """);
    }

    public void Dispose() => _dir.Dispose();

    private void Script(string name, string text)
    {
        var path = Path.Combine(Bin, name);
        File.WriteAllText(path, text.Replace("\r\n", "\n") + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
    }

    private void Network(string name, params string[] pluginTypes)
    {
        var plugins = new JsonArray(pluginTypes.Select(t => (JsonNode)new JsonObject
        {
            ["type"] = t,
            ["capabilities"] = t == "rec2" ? new JsonObject { ["portMappings"] = true } : null,
        }).ToArray());
        File.WriteAllText(Path.Combine(ConfDir, $"10-{name}.conflist"),
            new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = name, ["plugins"] = plugins }.ToJsonString());
    }

    private CniManager Manager(TimeSpan? timeout = null) => new(new CniOptions
    {
        ConfDir = ConfDir,
        BinDirs = [_dir.Sub("empty-first"), Bin],
        CacheDir = _dir.Sub("cache"),
        PluginTimeout = timeout ?? TimeSpan.FromSeconds(20),
    });

    private static PodNetworkRequest Pod(string id) => new(id, $"/run/hull/ns/net/{id}")
    {
        PodName = "web",
        PodNamespace = "default",
        PodUid = "uid-1",
        PortMappings = [new CniPortMapping(8080, 80), new CniPortMapping(0, 81)],
    };

    private string[] Calls() => File.Exists(Path.Combine(Log, "calls")) ? File.ReadAllLines(Path.Combine(Log, "calls")) : [];
    private JsonObject Stdin(string plugin, string command, string ifName) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Log, $"stdin-{plugin}-{command}-{ifName}")))!.AsObject();
    private Dictionary<string, string> Env(string plugin, string command, string ifName) =>
        File.ReadAllLines(Path.Combine(Log, $"env-{plugin}-{command}-{ifName}"))
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

    [Fact]
    public async Task Setup_runs_loopback_and_each_plugin_of_a_network_in_order_passing_prevResult_and_caches_the_result()
    {
        Network("net1", "rec1", "rec2");
        var manager = Manager();

        var status = await manager.SetupAsync(Pod("sbx1"));

        // Loopback is attached alongside the network (see the next test), so only the network's own order is fixed.
        Assert.Equal(["rec1 ADD eth0", "rec2 ADD eth0"], Calls().Where(c => !c.StartsWith("loopback ", StringComparison.Ordinal)));
        Assert.Contains("loopback ADD lo", Calls());
        Assert.Equal("10.9.9.9", Assert.Single(status.PodIps).ToString());
        Assert.Equal(["cni-loopback/lo", "net1/eth0"], status.Attachments.Select(a => $"{a.NetworkName}/{a.InterfaceName}"));
        Assert.Equal("rec2", status.Attachments[1].Result.Interfaces[0].Mac); // the last plugin's result is the network's

        var env = Env("rec1", "ADD", "eth0");
        Assert.Equal("sbx1", env["CNI_CONTAINERID"]);
        Assert.Equal("/run/hull/ns/net/sbx1", env["CNI_NETNS"]);
        Assert.Equal("eth0", env["CNI_IFNAME"]);
        Assert.Equal($"{_dir.Sub("empty-first")}:{Bin}", env["CNI_PATH"]);
        Assert.Equal("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sbx1;K8S_POD_UID=uid-1", env["CNI_ARGS"]);

        var first = Stdin("rec1", "ADD", "eth0");
        Assert.Equal("net1", first["name"]!.GetValue<string>());
        Assert.Equal("1.0.0", first["cniVersion"]!.GetValue<string>());
        Assert.Null(first["prevResult"]);
        Assert.Null(first["runtimeConfig"]); // rec1 declares no capability
        var second = Stdin("rec2", "ADD", "eth0");
        Assert.Equal("rec1", second["prevResult"]!["interfaces"]![0]!["mac"]!.GetValue<string>());
        var ports = second["runtimeConfig"]!["portMappings"]!.AsArray();
        Assert.Equal(8080, Assert.Single(ports)!["hostPort"]!.GetValue<int>()); // the mapping without a host port is not passed
        Assert.Equal("tcp", ports[0]!["protocol"]!.GetValue<string>());
        Assert.Equal("0.3.1", Stdin("loopback", "ADD", "lo")["cniVersion"]!.GetValue<string>());

        Assert.Equal(["cni-loopback", "net1"], manager.Cache.ReadAll("sbx1").Select(a => a.NetworkName));
        Assert.Equal("10.9.9.9", manager.GetCachedStatus("sbx1")!.PrimaryIp!.ToString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Loopback_is_attached_alongside_the_networks_unless_setup_serially(bool serially)
    {
        // This loopback waits (up to 5 s) for the network's first plugin to be called: attached alongside it, it sees the
        // call; attached first, it gives up and the network's plugins run after it.
        Script("loopback", """
            #!/bin/sh
            log="$(dirname "$0")/../log"
            cat > /dev/null
            i=0
            until grep -q '^rec1 ADD' "$log/calls" 2>/dev/null || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
            echo "loopback ADD lo" >> "$log/calls"
            printf '{"cniVersion":"0.3.1","interfaces":[{"name":"lo"}],"ips":[{"version":"4","interface":0,"address":"127.0.0.1/8"}]}'
            """);
        Network("net1", "rec1", "rec2");
        var manager = new CniManager(new CniOptions
        {
            ConfDir = ConfDir, BinDirs = [Bin], CacheDir = _dir.Sub("cache"), SetupSerially = serially,
        });

        var status = await manager.SetupAsync(Pod("sbx9"));

        Assert.Equal(["cni-loopback/lo", "net1/eth0"], status.Attachments.Select(a => $"{a.NetworkName}/{a.InterfaceName}"));
        var calls = Calls();
        if (serially) Assert.Equal(["loopback ADD lo", "rec1 ADD eth0", "rec2 ADD eth0"], calls);
        else Assert.True(Array.IndexOf(calls, "rec1 ADD eth0") < Array.IndexOf(calls, "loopback ADD lo"), string.Join(", ", calls));
    }

    [Fact]
    public async Task Teardown_runs_plugins_in_reverse_with_the_cached_result_and_drops_the_cache()
    {
        Network("net1", "rec1", "rec2");
        var manager = Manager();
        await manager.SetupAsync(Pod("sbx2"));
        File.Delete(Path.Combine(Log, "calls"));

        await manager.TeardownAsync(Pod("sbx2"));

        Assert.Equal(["rec2 DEL eth0", "rec1 DEL eth0", "loopback DEL lo"], Calls());
        Assert.Equal("rec2", Stdin("rec1", "DEL", "eth0")["prevResult"]!["interfaces"]![0]!["mac"]!.GetValue<string>());
        Assert.Equal(8080, Stdin("rec2", "DEL", "eth0")["runtimeConfig"]!["portMappings"]![0]!["hostPort"]!.GetValue<int>());
        Assert.Empty(manager.Cache.ReadAll("sbx2"));

        await manager.TeardownAsync(Pod("sbx2")); // again: DEL is idempotent, run with the current config
        Assert.Null(Stdin("rec1", "DEL", "eth0")["prevResult"]);
    }

    [Fact]
    public async Task A_plugin_error_is_reported_with_sandbox_plugin_network_and_CNI_error_and_the_setup_is_undone()
    {
        Network("net1", "rec1", "fail", "rec2");
        var manager = Manager();

        var e = await Assert.ThrowsAsync<HullException>(() => manager.SetupAsync(Pod("sbx3")));

        Assert.Equal(ErrorKind.Internal, e.Kind);
        Assert.Contains("pod sandbox \"sbx3\"", e.Message);
        Assert.Contains("CNI plugin \"fail\" of network \"net1\" failed to ADD (eth0)", e.Message);
        Assert.Contains("bridge hull0 has the wrong subnet: wanted 10.88.0.0/16", e.Message);
        Assert.Contains("CNI error code 7", e.Message);
        // Undone once every ADD has returned (loopback's runs alongside the network's): DEL of every plugin of the list in
        // reverse (rec2 never got ADD, DEL must be harmless), then of loopback.
        var calls = Calls();
        Assert.Equal(["rec1 ADD eth0", "fail ADD eth0"], calls[..3].Where(c => c != "loopback ADD lo"));
        Assert.Contains("loopback ADD lo", calls[..3]);
        Assert.Equal(["rec2 DEL eth0", "fail DEL eth0", "rec1 DEL eth0", "loopback DEL lo"], calls[3..]);
        Assert.Empty(manager.Cache.ReadAll("sbx3"));
    }

    [Fact]
    public async Task Teardown_keeps_going_after_a_failing_plugin_reports_all_and_keeps_the_cache_for_a_retry()
    {
        Network("net1", "rec1", "fail");
        File.WriteAllText(Path.Combine(Log, "fail-del"), "");
        Script("fail", """
            #!/bin/sh
            echo "fail $CNI_COMMAND $CNI_IFNAME" >> "$(dirname "$0")/../log/calls"
            cat > /dev/null
            if [ "$CNI_COMMAND" = ADD ] || [ ! -e "$(dirname "$0")/../log/fail-del" ]; then echo '{"cniVersion":"1.0.0"}'; exit 0; fi
            echo '{"code":11,"msg":"iptables is locked"}'
            exit 1
            """);
        var manager = Manager();
        await manager.SetupAsync(Pod("sbx4"));

        var e = await Assert.ThrowsAsync<HullException>(() => manager.TeardownAsync(Pod("sbx4")));
        Assert.Equal(ErrorKind.Unavailable, e.Kind); // code 11: try again later
        Assert.Contains("iptables is locked", e.Message);
        Assert.Contains("fail DEL eth0", Calls());
        Assert.Contains("rec1 DEL eth0", Calls()); // went on after the failure
        Assert.Contains("loopback DEL lo", Calls());
        Assert.Equal(["net1"], manager.Cache.ReadAll("sbx4").Select(a => a.NetworkName)); // kept for the retry

        File.Delete(Path.Combine(Log, "fail-del"));
        await manager.TeardownAsync(Pod("sbx4"));
        Assert.Empty(manager.Cache.ReadAll("sbx4"));
    }

    [Fact]
    public async Task A_crash_without_CNI_error_JSON_reports_stderr()
    {
        Network("net1", "crash");
        var e = await Assert.ThrowsAsync<HullException>(() => Manager().SetupAsync(Pod("sbx5")));
        Assert.Contains("CNI plugin \"crash\"", e.Message);
        Assert.Contains("exit code 2: panic: runtime error: index out of range", e.Message);
    }

    [Fact]
    public async Task A_missing_plugin_binary_is_FailedPrecondition_naming_the_bin_dirs()
    {
        Network("net1", "rec1", "nosuch");
        var e = await Assert.ThrowsAsync<HullException>(() => Manager().SetupAsync(Pod("sbx6")));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("CNI plugin \"nosuch\" of network \"net1\" failed to ADD (eth0): plugin binary not found in", e.Message);
        Assert.Contains(Bin, e.Message);
        Assert.Contains("rec1 DEL eth0", Calls()); // what was added is undone
    }

    [Fact]
    public async Task A_plugin_that_hangs_is_killed_at_the_timeout()
    {
        Network("net1", "slow");
        var e = await Assert.ThrowsAsync<HullException>(() => Manager(TimeSpan.FromSeconds(3)).SetupAsync(Pod("sbx7")));
        Assert.Equal(ErrorKind.DeadlineExceeded, e.Kind);
        Assert.Contains("CNI plugin \"slow\"", e.Message);
    }

    [Fact]
    public async Task Without_a_network_config_setup_is_FailedPrecondition_and_teardown_uses_the_cache()
    {
        var manager = Manager();
        var e = await Assert.ThrowsAsync<HullException>(() => manager.SetupAsync(Pod("sbx8")));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("cni plugin not initialized", e.Message);
        Assert.Empty(Calls());

        Network("net1", "rec1");
        await manager.SetupAsync(Pod("sbx8"));
        File.Delete(Path.Combine(ConfDir, "10-net1.conflist"));
        File.Delete(Path.Combine(Log, "calls"));
        await manager.TeardownAsync(Pod("sbx8"));
        Assert.Equal(["rec1 DEL eth0", "loopback DEL lo"], Calls());
    }

    [Fact]
    public async Task Check_runs_every_plugin_with_the_cached_result()
    {
        Network("net1", "rec1", "rec2");
        var manager = Manager();
        await manager.SetupAsync(Pod("sbx9"));
        File.Delete(Path.Combine(Log, "calls"));

        await manager.CheckAsync(Pod("sbx9"));

        Assert.Equal(["rec1 CHECK eth0", "rec2 CHECK eth0"], Calls()); // loopback's list is 0.3.1: no CHECK
        Assert.Equal("rec2", Stdin("rec1", "CHECK", "eth0")["prevResult"]!["interfaces"]![0]!["mac"]!.GetValue<string>());
        var e = await Assert.ThrowsAsync<HullException>(() => manager.CheckAsync(Pod("other")));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }
}
