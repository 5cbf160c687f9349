using System.Net;
using System.Text;
using Hull.Linux;
using Hull.Sandbox.Controller;

namespace Hull.Sandbox.PodSandbox;

/// <summary>
/// The files a pod's containers mount, all under <c>&lt;state&gt;/sandboxes/&lt;id&gt;/</c> (one home for these names):
/// <c>hostname</c>, <c>hosts</c>, <c>resolv.conf</c>, <c>shm/</c> (a tmpfs per pod), <c>infra/</c> (the infra process's
/// bundle, when the pod has one).
/// </summary>
public static class PodSandboxFiles
{
    public const string DirectoryName = "sandboxes";
    /// <summary>Size of a pod's /dev/shm, as containerd's defaultShmSize.</summary>
    public const long DefaultShmSize = 64L << 20;

    public static string SandboxDirectory(string stateDirectory, string id) => Path.Combine(stateDirectory, DirectoryName, id);
    public static string HostnamePath(string dir) => Path.Combine(dir, "hostname");
    public static string HostsPath(string dir) => Path.Combine(dir, "hosts");
    public static string ResolvConfPath(string dir) => Path.Combine(dir, "resolv.conf");
    public static string ShmPath(string dir) => Path.Combine(dir, "shm");
    public static string InfraBundle(string dir) => Path.Combine(dir, "infra");
    public static string InfraRootfs(string dir) => Path.Combine(InfraBundle(dir), "rootfs");
    /// <summary>Where hull-infra records the infra process it started ("&lt;pid&gt; &lt;start time&gt;").</summary>
    public static string InfraPidFile(string dir) => Path.Combine(dir, "infra.pid");

    /// <summary>
    /// The pod cgroup Hull made (it did not exist), written before it is made: an undo after a crash, whose row does not
    /// know it yet, still removes it.
    /// </summary>
    public static string CgroupMarkerPath(string dir) => Path.Combine(dir, "cgroup-created");

    /// <summary>The pod cgroup <see cref="CgroupMarkerPath"/> names, or null when Hull made none.</summary>
    public static string? ReadCgroupMarker(string dir)
    {
        try
        {
            return File.ReadAllText(CgroupMarkerPath(dir)).Trim() is { Length: > 0 } path ? path : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public static void WriteCgroupMarker(string dir, string cgroup) => AtomicFile.WriteText(CgroupMarkerPath(dir), cgroup);

    /// <summary>/etc/hostname: the hostname and a newline.</summary>
    public static void WriteHostname(string dir, string hostname) => WriteAtomic(HostnamePath(dir), hostname + "\n");

    /// <summary>/etc/hosts: loopback names, and the pod's IPs under its hostname (the kubelet replaces it for most pods).</summary>
    public static void WriteHosts(string dir, string hostname, IReadOnlyList<IPAddress> ips, string? hostHosts)
    {
        if (hostHosts is not null)
        {
            // Host network: the node's own file, as containerd copies it.
            WriteAtomic(HostsPath(dir), File.Exists(hostHosts) ? File.ReadAllText(hostHosts) : "");
            return;
        }
        var sb = new StringBuilder();
        sb.Append("127.0.0.1\tlocalhost\n");
        sb.Append("::1\tlocalhost ip6-localhost ip6-loopback\n");
        sb.Append("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
        foreach (var ip in ips) sb.Append(ip).Append('\t').Append(hostname).Append('\n');
        WriteAtomic(HostsPath(dir), sb.ToString());
    }

    /// <summary>/etc/resolv.conf from the pod's DNS config, or the node's file when there is none.</summary>
    public static void WriteResolvConf(string dir, PodDns? dns, string hostResolvConf)
    {
        if (dns is null || (dns.Servers.Count == 0 && dns.Searches.Count == 0 && dns.Options.Count == 0))
        {
            WriteAtomic(ResolvConfPath(dir), File.Exists(hostResolvConf) ? File.ReadAllText(hostResolvConf) : "");
            return;
        }
        WriteAtomic(ResolvConfPath(dir), FormatResolvConf(dns));
    }

    public static string FormatResolvConf(PodDns dns)
    {
        var sb = new StringBuilder();
        if (dns.Searches.Count > 0) sb.Append("search ").Append(string.Join(' ', dns.Searches)).Append('\n');
        foreach (var server in dns.Servers) sb.Append("nameserver ").Append(server).Append('\n');
        if (dns.Options.Count > 0) sb.Append("options ").Append(string.Join(' ', dns.Options)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Mounts a fresh tmpfs for the pod's /dev/shm.</summary>
    public static void MountShm(string dir, long sizeBytes)
    {
        var path = ShmPath(dir);
        Directory.CreateDirectory(path);
        new Mount("tmpfs", "shm", ["nosuid", "nodev", "noexec", "mode=1777", $"size={sizeBytes}"]).MountAt(path);
    }

    /// <summary>Unmounts the pod's /dev/shm; nothing mounted is fine.</summary>
    public static void UnmountShm(string dir)
    {
        var path = ShmPath(dir);
        if (Directory.Exists(path)) Mounts.UnmountAll(path, detach: true);
    }

    /// <summary>Containers read these through bind mounts, as any user.</summary>
    private static void WriteAtomic(string path, string text) => AtomicFile.WriteText(path, text, AtomicFile.WorldReadable);
}
