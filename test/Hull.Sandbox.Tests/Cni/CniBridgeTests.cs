using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Linux.Namespaces;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.Cni;

/// <summary>
/// Pods on a real bridge network: pinned netns, Debian's containernetworking-plugins 1.1.1 (bridge, host-local,
/// portmap, loopback), iptables. Needs root; each test has its own bridge and subnet (see <see cref="BridgeTestNetwork"/>).
/// </summary>
public sealed class CniBridgeTests
{
    private const string Bridge = "bridge", HostLocal = "host-local", Portmap = "portmap", Loopback = "loopback";

    private static bool InSubnet(IPAddress ip, int n) => ip.ToString().StartsWith($"10.99.{n}.", StringComparison.Ordinal);

    private static Task<List<(string Name, OperationalStatus Status)>> InterfacesIn(string netns) =>
        NamespaceRunner.RunInAsync(netns, NamespaceTypes.Network, () =>
            NetworkInterface.GetAllNetworkInterfaces().Select(i => (i.Name, i.OperationalStatus)).ToList());

    /// <summary>A TCP listener on 0.0.0.0:<paramref name="port"/> made inside the pod's netns (the socket stays there).</summary>
    private static Task<Socket> ListenInAsync(string netns, int port) =>
        NamespaceRunner.RunInAsync(netns, NamespaceTypes.Network, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Any, port));
            s.Listen();
            return s;
        });

    private static async Task AssertConnectsAsync(Socket client, Socket listener, IPEndPoint to)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await client.ConnectAsync(to, timeout.Token);
        using var accepted = await listener.AcceptAsync(timeout.Token);
        await client.SendAsync(new byte[] { 42 });
        var buffer = new byte[1];
        Assert.Equal(1, await accepted.ReceiveAsync(buffer, timeout.Token));
        Assert.Equal(42, buffer[0]);
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback, "/usr/sbin/iptables-save")]
    public async Task Add_gives_the_pod_an_IP_from_the_bridge_subnet_with_eth0_and_lo_up()
    {
        using var net = new BridgeTestNetwork();
        var manager = net.NewManager();
        Assert.True(manager.Status().NetworkReady);
        var pod = await net.NewPodAsync("ipv4");

        var status = await manager.SetupAsync(pod);

        var ip = status.PrimaryIp!;
        Assert.True(InSubnet(ip, net.N), $"{ip} is not in {net.Subnet}");
        Assert.NotEqual(net.Gateway, ip);
        Assert.Equal(["cni-loopback/lo", $"{net.Name}/eth0"], status.Attachments.Select(a => $"{a.NetworkName}/{a.InterfaceName}"));
        var eth0 = status.Attachments[1].Result;
        Assert.Equal("1.0.0", eth0.CniVersion);
        Assert.Contains(eth0.Interfaces, i => i.Name == "eth0" && i.Sandbox == pod.NetNsPath);
        Assert.Equal(net.Gateway, Assert.Single(eth0.IpsOf("eth0")).Gateway);
        Assert.Equal("127.0.0.1/8", status.Attachments[0].Result.IpsOf("lo")[0].ToString());

        var inside = await InterfacesIn(pod.NetNsPath);
        Assert.Contains(inside, i => i.Name == "eth0" && i.Status == OperationalStatus.Up);
        Assert.Contains(inside, i => i.Name == "lo" && i.Status is OperationalStatus.Up or OperationalStatus.Unknown);
        Assert.Equal([ip.ToString()], net.Allocations);
        Assert.Contains(pod.SandboxId, File.ReadAllText(Path.Combine(net.IpamDir, net.Name, ip.ToString())));
        Assert.NotEmpty(await BridgeTestNetwork.IptablesRulesWith(pod.SandboxId)); // bridge's ipMasq chain
        Assert.True(File.Exists(manager.Cache.PathOf(net.Name, pod.SandboxId, "eth0")));
        Assert.True(File.Exists(manager.Cache.PathOf("cni-loopback", pod.SandboxId, "lo")));

        await manager.CheckAsync(pod); // bridge, host-local and portmap 1.1.1 all implement CHECK
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback, "/usr/sbin/iptables-save")]
    public async Task Del_removes_the_veth_the_IPAM_allocation_the_iptables_rules_and_the_cache_and_unpinning_leaves_no_mount()
    {
        using var net = new BridgeTestNetwork();
        var manager = net.NewManager();
        var pod = await net.NewPodAsync("del", [new CniPortMapping(Random.Shared.Next(20000, 30000), 80)]);
        var status = await manager.SetupAsync(pod);
        string hostVeth = status.Attachments[1].Result.Interfaces.Single(i => i.Sandbox is null && i.Name != net.Bridge).Name;
        Assert.True(Directory.Exists($"/sys/class/net/{hostVeth}"));
        Assert.Contains(await BridgeTestNetwork.IptablesRulesWith(pod.SandboxId), r => r.Contains("dnat", StringComparison.Ordinal)); // portmap

        await manager.TeardownAsync(pod);

        Assert.False(Directory.Exists($"/sys/class/net/{hostVeth}"));
        Assert.Empty(net.Allocations);
        Assert.Empty(await BridgeTestNetwork.IptablesRulesWith(pod.SandboxId));
        Assert.Empty(manager.Cache.ReadAll(pod.SandboxId));
        Assert.DoesNotContain(await InterfacesIn(pod.NetNsPath), i => i.Name == "eth0");

        net.Pinner.Remove(pod.SandboxId);
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(pod.SandboxId, StringComparison.Ordinal));
        await manager.TeardownAsync(pod); // a second teardown, netns gone: still fine
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback)]
    public async Task Two_pods_on_the_bridge_reach_each_other()
    {
        using var net = new BridgeTestNetwork();
        var manager = net.NewManager();
        var a = await net.NewPodAsync("a");
        var b = await net.NewPodAsync("b");
        var ipA = (await manager.SetupAsync(a)).PrimaryIp!;
        var ipB = (await manager.SetupAsync(b)).PrimaryIp!;
        Assert.NotEqual(ipA, ipB);

        using var listener = await ListenInAsync(b.NetNsPath, 8080);
        using var client = await NamespaceRunner.RunInAsync(a.NetNsPath, NamespaceTypes.Network,
            () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await AssertConnectsAsync(client, listener, new IPEndPoint(ipB, 8080));
        Assert.Equal(ipA, ((IPEndPoint)client.LocalEndPoint!).Address);
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback)]
    public async Task A_hostPort_through_portmap_is_reachable_from_the_node_on_its_bridge_IP_its_node_IP_and_localhost()
    {
        using var net = new BridgeTestNetwork();
        var manager = net.NewManager();
        int hostPort = Random.Shared.Next(30000, 40000);
        var pod = await net.NewPodAsync("web", [new CniPortMapping(hostPort, 80)]);
        await manager.SetupAsync(pod);
        using var listener = await ListenInAsync(pod.NetNsPath, 80);

        var nodeIp = NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.OperationalStatus == OperationalStatus.Up && i.NetworkInterfaceType != NetworkInterfaceType.Loopback && !i.Name.StartsWith("hulltest") && !i.Name.StartsWith("veth"))
            .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork);
        var targets = new List<IPAddress> { net.Gateway, IPAddress.Loopback };
        if (nodeIp is not null) targets.Add(nodeIp);
        foreach (var target in targets)
        {
            // Locally originated: DNAT happens in nat OUTPUT; 127.0.0.1 works because portmap (snat: true) sets
            // route_localnet on the bridge and masquerades 127.0.0.1 sources.
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await AssertConnectsAsync(client, listener, new IPEndPoint(target, hostPort));
        }

        await manager.TeardownAsync(pod);
        using var after = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAnyAsync<SocketException>(() => after.ConnectAsync(new IPEndPoint(net.Gateway, hostPort)));
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback, "/usr/sbin/iptables-save")]
    public async Task A_conflist_with_an_unknown_plugin_fails_ADD_clearly_and_leaves_no_allocation_behind()
    {
        using var net = new BridgeTestNetwork();
        var conf = JsonNode.Parse(File.ReadAllText(net.ConfigPath))!.AsObject();
        conf["plugins"]!.AsArray().Insert(1, new JsonObject { ["type"] = "no-such-plugin" });
        net.WriteConfig(conf);
        var manager = net.NewManager();
        var pod = await net.NewPodAsync("broken");

        var e = await Assert.ThrowsAsync<HullException>(() => manager.SetupAsync(pod));

        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"pod sandbox \"{pod.SandboxId}\"", e.Message);
        Assert.Contains($"CNI plugin \"no-such-plugin\" of network \"{net.Name}\" failed to ADD (eth0)", e.Message);
        Assert.Contains("not found in /usr/lib/cni", e.Message);
        Assert.Empty(net.Allocations); // bridge's ADD allocated one; the DEL on failure released it
        Assert.Empty(await BridgeTestNetwork.IptablesRulesWith(pod.SandboxId));
        Assert.DoesNotContain(await InterfacesIn(pod.NetNsPath), i => i.Name == "eth0");
        Assert.Empty(manager.Cache.ReadAll(pod.SandboxId));
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback, "/usr/sbin/iptables-save")]
    public async Task The_result_cache_lets_a_new_manager_delete_with_the_config_ADD_used_even_after_the_config_is_gone()
    {
        using var net = new BridgeTestNetwork();
        var pod = await net.NewPodAsync("restart", [new CniPortMapping(Random.Shared.Next(20000, 30000), 80)]);
        var ip = (await net.NewManager().SetupAsync(pod)).PrimaryIp!;

        File.Delete(net.ConfigPath); // the node's config changes while the pod runs; hulld restarts
        var restarted = net.NewManager();
        Assert.False(restarted.Status().NetworkReady);
        Assert.Equal(ip, restarted.GetCachedStatus(pod.SandboxId)!.PrimaryIp);

        await restarted.TeardownAsync(pod);

        Assert.Empty(net.Allocations);
        Assert.Empty(await BridgeTestNetwork.IptablesRulesWith(pod.SandboxId));
        Assert.Empty(restarted.Cache.ReadAll(pod.SandboxId));
    }

    [RootFact(Bridge, HostLocal, Loopback)]
    public async Task Del_after_the_netns_is_gone_still_releases_the_IP()
    {
        // ipMasq off: bridge 1.1.1 finds the masquerade rules to delete through the netns, so with the netns
        // gone they would stay behind (see hack/cni/README.md); the IPAM allocation is released either way.
        using var net = new BridgeTestNetwork(ipMasq: false, portmap: false);
        var manager = net.NewManager();
        var pod = await net.NewPodAsync("nonetns");
        await manager.SetupAsync(pod);
        Assert.Single(net.Allocations);

        net.Pinner.Remove(pod.SandboxId);
        await manager.TeardownAsync(pod);

        Assert.Empty(net.Allocations);
        Assert.Empty(manager.Cache.ReadAll(pod.SandboxId));
    }

    [RootFact(Bridge, HostLocal, Portmap, Loopback)]
    public async Task Check_reports_a_pod_whose_eth0_has_vanished()
    {
        // ipMasq off: bridge 1.1.1 finds the masquerade rules to delete through eth0's addresses; with eth0 gone
        // the DEL that cleans up would leave them on the node.
        using var net = new BridgeTestNetwork(ipMasq: false);
        var manager = net.NewManager();
        var pod = await net.NewPodAsync("check");
        await manager.SetupAsync(pod);
        await manager.CheckAsync(pod);

        await BridgeTestNetwork.RunAsync("nsenter", $"--net={pod.NetNsPath}", "ip", "link", "del", "eth0");

        var e = await Assert.ThrowsAsync<HullException>(() => manager.CheckAsync(pod));
        Assert.Contains($"pod sandbox \"{pod.SandboxId}\": CNI plugin \"bridge\" of network \"{net.Name}\" failed to CHECK (eth0)", e.Message);
    }
}
