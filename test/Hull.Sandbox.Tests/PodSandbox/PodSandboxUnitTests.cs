using System.Net;
using Hull.Sandbox.Controller;
using Hull.Sandbox.PodSandbox;

namespace Hull.Sandbox.Tests.PodSandbox;

public sealed class PodIdentityTests
{
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

public sealed class InfraProcessIdTests
{
    [Theory]
    [InlineData("4242 123456\n", 4242, 123456ul)]
    [InlineData("1 1", 1, 1ul)]
    public void Hull_infras_pid_file_line_names_pid_and_start_time(string text, int pid, ulong start)
    {
        Assert.Equal(new InfraProcessId(pid, start), InfraProcessId.TryParse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("4242")]
    [InlineData("4242 0")]
    [InlineData("0 123")]
    [InlineData("-3 123")]
    [InlineData("4242 123 9")]
    [InlineData("abc 123")]
    public void Anything_else_names_no_process(string text)
    {
        Assert.Null(InfraProcessId.TryParse(text));
    }

    [Fact]
    public void A_pid_whose_start_time_differs_is_another_process()
    {
        var self = Hull.Linux.Processes.ProcessInfo.TryRead(Environment.ProcessId)!;
        Assert.True(new InfraProcessId(self.Pid, self.StartTime).IsRunning);
        Assert.False(new InfraProcessId(self.Pid, self.StartTime + 1).IsRunning);
    }
}
