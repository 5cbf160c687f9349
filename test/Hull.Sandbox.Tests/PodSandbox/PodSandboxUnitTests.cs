using System.Net;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Sandbox.Controller;
using Hull.Sandbox.PodSandbox;
using Hull.Sandbox.Store;

namespace Hull.Sandbox.Tests.PodSandbox;

public sealed class SandboxNameRegistrarTests
{
    [Fact]
    public void A_reserved_name_is_refused_to_another_id_and_says_who_holds_it()
    {
        var names = new SandboxNameRegistrar();
        names.Reserve("web_default_uid_0", "id1");
        names.Reserve("web_default_uid_0", "id1"); // same id: no-op
        var e = Assert.Throws<HullException>(() => names.Reserve("web_default_uid_0", "id2"));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Contains("is reserved for \"id1\"", e.Message);
    }

    [Fact]
    public void Only_the_holder_releases_a_name()
    {
        var names = new SandboxNameRegistrar();
        names.Reserve("n", "id1");
        names.Release("n", "id2");
        Assert.Equal("id1", names.HolderOf("n"));
        names.Release("n", "id1");
        names.Reserve("n", "id2");
        Assert.Equal("id2", names.HolderOf("n"));
    }

    [Fact]
    public void The_reservation_key_is_name_namespace_uid_attempt()
    {
        Assert.Equal("web_default_u1_2", new PodIdentity("web", "default", "u1", 2).ReservationKey);
    }
}

public sealed class PodSandboxFilesTests
{
    [Fact]
    public void Resolv_conf_is_written_from_the_DNS_config()
    {
        var text = PodSandboxFiles.FormatResolvConf(new PodDns(["10.96.0.10", "8.8.8.8"], ["ns.svc.cluster.local", "svc.cluster.local"], ["ndots:5"]));
        Assert.Equal("search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\noptions ndots:5\n", text);
    }

    [Fact]
    public void Without_a_DNS_config_the_node_resolv_conf_is_copied_and_hosts_name_the_pod_ips()
    {
        var dir = Directory.CreateTempSubdirectory("hull-podfiles-").FullName;
        try
        {
            var hostResolv = Path.Combine(dir, "host-resolv.conf");
            File.WriteAllText(hostResolv, "nameserver 1.1.1.1\n");
            PodSandboxFiles.WriteResolvConf(dir, null, hostResolv);
            Assert.Equal("nameserver 1.1.1.1\n", File.ReadAllText(PodSandboxFiles.ResolvConfPath(dir)));
            PodSandboxFiles.WriteHosts(dir, "web", [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("fd00::3")], null);
            var hosts = File.ReadAllText(PodSandboxFiles.HostsPath(dir));
            Assert.Contains("127.0.0.1\tlocalhost", hosts);
            Assert.Contains("10.1.2.3\tweb", hosts);
            Assert.Contains("fd00::3\tweb", hosts);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Net_dev_counters_are_read_per_interface_without_lo()
    {
        const string text = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
              eth0:    1234      10    2    0    0     0          0         0     5678      20    3    0    0     0       0          0
            """;
        var m = Assert.Single(PodSandboxController.ParseNetDev(text));
        Assert.Equal(new InterfaceMetrics("eth0", 1234, 2, 5678, 3), m);
    }
}

public sealed class SandboxStoreTests
{
    [Fact]
    public async Task A_sandbox_round_trips_through_the_store_with_its_spec_instance_and_state()
    {
        var root = Directory.CreateTempSubdirectory("hull-sbstore-").FullName;
        try
        {
            using var metadata = MetadataStore.Open(root);
            var store = new SandboxStore(metadata);
            var spec = new PodSandboxSpec
            {
                Id = "abc123",
                Identity = new PodIdentity("web", "default", "uid-1", 1),
                RuntimeHandler = "runc",
                Dns = new PodDns(["10.0.0.10"], ["svc"], []),
                PortMappings = [new PodPortMapping("TCP", 80, 8080, "")],
                Labels = new Dictionary<string, string> { ["app"] = "web" },
                PidMode = NamespaceMode.Pod,
            };
            var created = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
            var instance = new SandboxInstance
            {
                Id = "abc123", CreatedAt = created, State = SandboxState.Ready, NetNsPath = "/run/hull/ns/net/abc123",
                Ips = [IPAddress.Parse("10.88.0.5"), IPAddress.Parse("fd00::5")], NetworkAttached = true, Sandboxer = "podsandbox",
            };
            await store.PutAsync(new SandboxRecord(spec, instance, SandboxState.Ready, created, null), default);
            var record = Assert.Single(await store.ListAsync(default));
            Assert.Equal(SandboxState.Ready, record.State);
            Assert.Equal(created, record.CreatedAt);
            Assert.Equal("web", record.Spec.Identity.Name);
            Assert.Equal(NamespaceMode.Pod, record.Spec.PidMode);
            Assert.Equal(8080, Assert.Single(record.Spec.PortMappings).HostPort);
            Assert.Equal("web", record.Spec.Labels["app"]);
            Assert.Equal(instance.Ips, record.Instance.Ips);
            Assert.True(record.Instance.NetworkAttached);

            var exited = created.AddMinutes(1);
            await store.PutAsync(record with { State = SandboxState.NotReady, ExitedAt = exited }, default);
            record = Assert.Single(await store.ListAsync(default));
            Assert.Equal(SandboxState.NotReady, record.State);
            Assert.Equal(exited, record.ExitedAt);
            Assert.True(await store.DeleteAsync("abc123", default));
            Assert.Empty(await store.ListAsync(default));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
