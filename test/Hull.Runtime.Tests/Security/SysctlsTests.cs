using Hull.Core;
using Hull.Runtime.Security;

namespace Hull.Runtime.Tests.Security;

public class SysctlsTests
{
    [Theory]
    [InlineData("net.ipv4.ip_forward", false, false, true)]
    [InlineData("net.core.somaxconn", true, false, false)]
    [InlineData("kernel.shm_rmid_forced", false, false, true)]
    [InlineData("kernel.shmmax", false, true, false)]
    [InlineData("kernel.msgmax", false, false, true)]
    [InlineData("kernel.msgmnb", false, true, false)]
    [InlineData("kernel.sem", false, false, true)]
    [InlineData("kernel.sem", true, false, true)]
    [InlineData("fs.mqueue.msg_max", false, false, true)]
    [InlineData("fs.mqueue.msg_max", false, true, false)]
    [InlineData("kernel.domainname", false, false, true)]
    [InlineData("kernel.hostname", false, false, false)]
    [InlineData("vm.swappiness", false, false, false)]
    [InlineData("kernel.pid_max", false, false, false)]
    [InlineData("fs.file-max", false, false, false)]
    // Not on runc's list, so runc would refuse the spec later: refused here, for the pod and the container alike.
    [InlineData("kernel.shm_next_id", false, false, false)]
    [InlineData("kernel.msg_next_id", false, false, false)]
    [InlineData("net..ipv4", false, false, false)]
    public void Only_namespaced_sysctls_of_namespaces_the_pod_owns_are_allowed(string name, bool hostNetwork, bool hostIpc, bool allowed)
    {
        var sysctls = new Dictionary<string, string> { [name] = "1" };
        if (allowed)
        {
            Assert.Equal("1", Sysctls.Validate(sysctls, hostNetwork, hostIpc, hostUts: false)[name]);
            return;
        }
        var e = Assert.Throws<HullException>(() => Sysctls.Validate(sysctls, hostNetwork, hostIpc, hostUts: false));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"\"{name}\"", e.Message);
    }

    [Theory]
    [InlineData("net/ipv4/ip_forward", "net.ipv4.ip_forward")]
    [InlineData("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter")]
    [InlineData("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter")]
    public void Slash_separated_names_are_normalized(string name, string canonical)
    {
        Assert.Equal(canonical, Sysctls.Normalize(name));
        Assert.True(Sysctls.Validate(new Dictionary<string, string> { [name] = "0" }, false, false, false).ContainsKey(canonical));
    }

    [Fact]
    public void The_host_network_message_says_why()
    {
        var e = Assert.Throws<HullException>(() => Sysctls.Validate(new Dictionary<string, string> { ["net.ipv4.ip_forward"] = "1" }, true, false, false));
        Assert.Contains("host network", e.Message);
    }

    [Theory]
    [InlineData("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward")]
    [InlineData("net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")]
    public void A_canonical_name_maps_to_its_proc_sys_path(string name, string path) => Assert.Equal(path, Sysctls.ProcPath(name));
}
