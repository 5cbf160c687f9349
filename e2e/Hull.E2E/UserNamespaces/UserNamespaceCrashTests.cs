using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Hull.Grpc;

namespace Hull.E2E.UserNamespaces;

/// <summary>
/// hulld killed with SIGKILL in the middle of a user-namespaced pod's start (while CreateContainer makes the idmapped rootfs),
/// started again: once the kubelet stops and removes the stale pod nothing is left (mounts, the user-namespace pin, processes).
/// </summary>
public sealed class UserNamespaceCrashTests(UserNamespaceFixture f) : IClassFixture<UserNamespaceFixture>
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_kill_9_of_hulld_during_a_userns_pod_start_leaves_nothing_once_the_stale_pod_is_removed()
    {
        uint hostId = UserNamespaceTests.HostBase + (uint)f.Env.N * UserNamespaceTests.Size + 400 * UserNamespaceTests.Size;
        string containers = Path.Combine(f.Env.Hulld.State, "containers") + "/";
        var before = MountsUnder(f.Env.Dir);
        var podConfig = UserNamespaceTests.UsernsPod(f.Name("crash"), hostId, f.Env.CgroupRoot);
        string pod = await f.Env.RunPodAsync(podConfig);
        string netns = await f.Env.NetNsAsync(pod);
        string userPin = Path.Combine(f.Env.Hulld.State, "ns", "user", pod);
        Assert.True(File.Exists(userPin), $"no user-namespace pin at {userPin}");

        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Image = new ImageSpec { Image = f.Image } };
        config.Command.AddRange(["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]);
        config.Linux = new LinuxContainerConfig
        {
            SecurityContext = new LinuxContainerSecurityContext { NamespaceOptions = podConfig.Linux.SecurityContext.NamespaceOptions.Clone() },
        };
        var create = f.Env.Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig },
            deadline: CriClient.In(Long)).ResponseAsync;
        // Kill as soon as the container's first mount (its idmapped layers or rootfs) is there.
        var deadline = DateTime.UtcNow + Long;
        while (!MountsUnder(containers).Any() && !create.IsCompleted && DateTime.UtcNow < deadline) await Task.Delay(2);
        bool midCreate = !create.IsCompleted;
        await f.Env.KillAndRestartAsync();
        try
        {
            await create;
        }
        catch (RpcException)
        {
            // the connection died with hulld; expected when the kill came first
        }

        // The kubelet's view: the pod is stale; it stops and removes it (and with it any container hulld had recorded).
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);

        var left = await f.Env.LeftoversAsync(pod, netns, $"{f.Env.CgroupRoot}/{podConfig.Metadata.Name}");
        // <state>/ns is hulld's own (the pins' private bind-mounted directory, made with the first pod and kept), not the pod's.
        string nsDirectory = Path.Combine(f.Env.Hulld.State, "ns");
        var newMounts = MountsUnder(f.Env.Dir).Except(before).Where(m => m != nsDirectory).ToList();
        if (newMounts.Count > 0) left.Add("mounts under the test root: " + string.Join(" | ", newMounts));
        if (File.Exists(userPin)) left.Add($"user-namespace pin file {userPin}");
        // A holder the restart killed may take a moment to be reaped by PID 1: wait for it (a live one never goes).
        var mapped = UserNamespaceProcesses(hostId);
        for (var until = DateTime.UtcNow.AddSeconds(5); mapped.Count > 0 && DateTime.UtcNow < until; mapped = UserNamespaceProcesses(hostId))
            await Task.Delay(100);
        if (mapped.Count > 0)
            left.Add("processes in the pod's user namespace: " + string.Join(", ", mapped.Select(pid =>
                $"{pid} ({ReadOrEmpty($"/proc/{pid}/comm").Trim()}, {ReadOrEmpty($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim()})")));
        if (Directory.Exists(containers) && Directory.EnumerateDirectories(containers).Any())
            left.Add("container directories: " + string.Join(", ", Directory.EnumerateDirectories(containers).Select(Path.GetFileName)));
        Assert.True(left.Count == 0, $"killed {(midCreate ? "during" : "after")} CreateContainer; left behind: {string.Join("; ", left)}");
    }

    /// <summary>Mount points at or below <paramref name="dir"/> (mountinfo field 5).</summary>
    private static List<string> MountsUnder(string dir) => File.ReadAllLines("/proc/self/mountinfo")
        .Select(l => l.Split(' ')[4]).Where(p => p.StartsWith(dir, StringComparison.Ordinal)).ToList();

    /// <summary>Processes whose uid map starts at <paramref name="hostId"/>: the pod's user namespace.</summary>
    private static List<int> UserNamespaceProcesses(uint hostId) => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
        .Where(pid => pid > 0 && ReadOrEmpty($"/proc/{pid}/uid_map").Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, var host, ..] && host == $"{hostId}")
        .Where(pid => ReadOrEmpty($"/proc/{pid}/stat").Split(") ") is not [_, var rest] || !rest.StartsWith('Z')) // a zombie holds nothing
        .ToList();

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
    }
}
