using System.Diagnostics;
using System.Net.Sockets;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Pods;

/// <summary>Pod sandboxes over the CRI socket, with real namespaces, the real CNI bridge plugins and a real cgroup tree.</summary>
public sealed class PodSandboxTests
{
    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter", "iptables-save", "ip")]
    public async Task A_pod_gets_an_IP_from_the_bridge_is_listed_and_stop_and_remove_leave_nothing_behind()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        string cgroup = $"{env.CgroupRoot}/pod-a";
        var config = PodTestEnvironment.PodConfig("pod-a", cgroupParent: cgroup);
        config.DnsConfig = new DNSConfig { Servers = { "10.96.0.10" }, Searches = { "e2e.svc.cluster.local" }, Options = { "ndots:5" } };
        var id = await env.RunPodAsync(config);

        var status = await env.StatusAsync(id, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
        Assert.StartsWith(env.SubnetPrefix, status.Status.Network.Ip);
        Assert.Equal("pod-a", status.Status.Metadata.Name);
        Assert.Equal("pod-a", status.Status.Labels["app"]);
        var info = status.Info["info"];
        Assert.Contains("cniResult", info);
        Assert.Contains(status.Status.Network.Ip, info);
        Assert.Contains("\"runtimeHandler\"", info);
        var netns = await env.NetNsAsync(id);
        Assert.Contains(netns, File.ReadAllText("/proc/self/mountinfo"));
        Assert.True(Directory.Exists($"/sys/fs/cgroup/memory{cgroup}"), "pod cgroup was not created");

        // The pod's files.
        var dir = Path.Combine(env.Hulld.State, "sandboxes", id);
        Assert.Equal("pod-a\n", File.ReadAllText(Path.Combine(dir, "hostname")));
        Assert.Contains("nameserver 10.96.0.10", File.ReadAllText(Path.Combine(dir, "resolv.conf")));
        Assert.Contains("search e2e.svc.cluster.local", File.ReadAllText(Path.Combine(dir, "resolv.conf")));
        Assert.Contains("localhost", File.ReadAllText(Path.Combine(dir, "hosts")));
        Assert.Contains(Path.Combine(dir, "shm") + " ", File.ReadAllText("/proc/self/mountinfo"));
        var hostname = await ProcessRunner.RunAsync("nsenter", [$"--uts={Path.Combine(env.Hulld.State, "ns", "uts", id)}", "/bin/busybox", "hostname"]);
        Assert.Equal("pod-a", hostname.Stdout.Trim());

        // Lists and their filters.
        Assert.Contains((await env.ListAsync()).Items, p => p.Id == id && p.State == PodSandboxState.SandboxReady);
        Assert.Single((await env.ListAsync(new PodSandboxFilter { Id = id[..12] })).Items);
        Assert.Empty((await env.ListAsync(new PodSandboxFilter { Id = (id[0] == 'a' ? "b" : "a") + id[1..12] })).Items);
        Assert.Single((await env.ListAsync(new PodSandboxFilter { LabelSelector = { ["app"] = "pod-a" } })).Items);
        Assert.Empty((await env.ListAsync(new PodSandboxFilter { LabelSelector = { ["app"] = "other" } })).Items);
        Assert.Empty((await env.ListAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } })).Items);

        // Stats: the pod cgroup and its eth0.
        var stats = await env.Cri.Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = id });
        Assert.Equal(id, stats.Stats.Attributes.Id);
        Assert.Equal("eth0", stats.Stats.Linux.Network.DefaultInterface.Name);

        await env.StopAsync(id);
        await env.StopAsync(id); // idempotent
        status = await env.StatusAsync(id);
        Assert.Equal(PodSandboxState.SandboxNotready, status.Status.State);
        Assert.Single((await env.ListAsync(new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxNotready } })).Items);

        await env.RemoveAsync(id);
        await env.RemoveAsync(id); // idempotent
        var gone = await Assert.ThrowsAsync<RpcException>(() => env.StatusAsync(id));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.Empty((await env.ListAsync()).Items);
        var left = await env.LeftoversAsync(id, netns, cgroup);
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "nsenter", "/bin/busybox", "ip")]
    public async Task Two_pods_reach_each_other_over_the_bridge()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var a = await env.RunPodAsync(PodTestEnvironment.PodConfig("pod-a"));
        var b = await env.RunPodAsync(PodTestEnvironment.PodConfig("pod-b"));
        var ipB = (await env.StatusAsync(b)).Status.Network.Ip;
        Assert.NotEqual((await env.StatusAsync(a)).Status.Network.Ip, ipB);

        using var listener = StartListener(await env.NetNsAsync(b), 8080);
        await Task.Delay(300);
        var send = await ProcessRunner.RunAsync("sh", ["-c", $"echo hello-from-a | nsenter --net={await env.NetNsAsync(a)} /bin/busybox nc -w 3 {ipB} 8080"],
            TimeSpan.FromSeconds(20));
        Assert.True(send.ExitCode == 0, send.ToString());
        Assert.Contains("hello-from-a", await ReadListenerAsync(listener));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "nsenter", "/bin/busybox", "iptables-save", "ip")]
    public async Task A_host_port_mapping_is_reachable_from_the_host_and_its_rules_go_with_the_pod()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        int hostPort = 31000 + env.N;
        var config = PodTestEnvironment.PodConfig("web");
        config.PortMappings.Add(new PortMapping { Protocol = Protocol.Tcp, ContainerPort = 80, HostPort = hostPort });
        var id = await env.RunPodAsync(config);
        var iptables = await ProcessRunner.RunAsync("iptables-save", []);
        Assert.Contains(hostPort.ToString(System.Globalization.CultureInfo.InvariantCulture), iptables.Stdout);

        var netns = await env.NetNsAsync(id);
        using var listener = StartListener(netns, 80);
        await Task.Delay(300);
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(env.Gateway, hostPort).WaitAsync(TimeSpan.FromSeconds(10));
            await client.GetStream().WriteAsync("hello-from-host\n"u8.ToArray());
        }
        Assert.Contains("hello-from-host", await ReadListenerAsync(listener));

        await env.StopAsync(id);
        await env.RemoveAsync(id);
        var left = await env.LeftoversAsync(id, netns, null);
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
        Assert.DoesNotContain($"--dport {hostPort} ", (await ProcessRunner.RunAsync("iptables-save", [])).Stdout);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "iptables-save", "ip")]
    public async Task A_stopped_pod_is_removed_without_running_the_CNI_plugins_again()
    {
        // StopPodSandbox ran CNI DEL and dropped the pins; removal has nothing to ask the plugins (as in containerd),
        // so a network config broken since the stop does not block it, and removal costs no plugin runs.
        await using var env = await PodTestEnvironment.StartAsync();
        var id = await env.RunPodAsync(PodTestEnvironment.PodConfig("stopped-first", cgroupParent: $"{env.CgroupRoot}/stopped-first"));
        var netns = await env.NetNsAsync(id);
        await env.StopAsync(id);
        env.WriteNetwork(extraPlugin: "hull-no-such-plugin"); // read again at the next CNI call
        await env.RemoveAsync(id);
        Assert.Empty((await env.ListAsync()).Items);
        var left = await env.LeftoversAsync(id, netns, $"{env.CgroupRoot}/stopped-first");
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "iptables-save", "ip")]
    public async Task A_broken_CNI_config_fails_cleanly_and_the_retry_after_fixing_it_works()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        // The bridge and host-local succeed, then a plugin that does not exist fails: what succeeded must be undone.
        env.WriteNetwork(extraPlugin: "hull-no-such-plugin");
        var config = PodTestEnvironment.PodConfig("flaky", uid: "uid-flaky", cgroupParent: $"{env.CgroupRoot}/flaky");
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => env.RunPodAsync(config));
        Assert.Contains("hull-no-such-plugin", e.Status.Detail);
        Assert.Empty((await env.ListAsync()).Items);
        var sandboxes = Path.Combine(env.Hulld.State, "sandboxes");
        var leftDirs = Directory.Exists(sandboxes) ? Directory.GetDirectories(sandboxes) : [];
        Assert.Empty(leftDirs);
        var left = await env.LeftoversAsync("hull-no-such-id", null, $"{env.CgroupRoot}/flaky");
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
        Assert.Empty(Directory.Exists(Path.Combine(env.Hulld.State, "ns", "net")) ? Directory.GetFiles(Path.Combine(env.Hulld.State, "ns", "net")) : []);

        // The kubelet retries with the same name: it is free again, and with the config fixed the pod runs.
        env.WriteNetwork();
        var id = await env.RunPodAsync(config);
        Assert.StartsWith(env.SubnetPrefix, (await env.StatusAsync(id)).Status.Network.Ip);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip")]
    public async Task A_second_RunPodSandbox_for_the_same_name_is_refused_while_the_first_pod_exists()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var config = PodTestEnvironment.PodConfig("twice", uid: "uid-twice");
        var id = await env.RunPodAsync(config);
        var e = await Assert.ThrowsAsync<RpcException>(() => env.RunPodAsync(config));
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Contains("is reserved for", e.Status.Detail);
        Assert.Contains(id, e.Status.Detail);
        Assert.Single((await env.ListAsync()).Items);

        // Another attempt of the same pod is a different name; after removal the name is free again.
        var second = await env.RunPodAsync(PodTestEnvironment.PodConfig("twice", uid: "uid-twice", attempt: 1));
        await env.StopAsync(id);
        await env.RemoveAsync(id);
        var again = await env.RunPodAsync(config);
        Assert.NotEqual(id, again);
        Assert.NotEqual(second, again);
    }

    [E2EFact("runc", "ip")]
    public async Task RunPodSandbox_with_an_unknown_runtime_handler_names_the_known_ones()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var e = await Assert.ThrowsAsync<RpcException>(() => env.RunPodAsync(PodTestEnvironment.PodConfig("nohandler"), handler: "kata"));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("\"kata\"", e.Status.Detail);
        Assert.Contains("\"runc\"", e.Status.Detail);
        Assert.Empty((await env.ListAsync()).Items);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "nsenter", "ip", "iptables-save")]
    public async Task After_hulld_is_killed_and_restarted_pods_are_reported_as_they_were()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var ready = await env.RunPodAsync(PodTestEnvironment.PodConfig("survivor", uid: "uid-survivor", cgroupParent: $"{env.CgroupRoot}/survivor"));
        var stopped = await env.RunPodAsync(PodTestEnvironment.PodConfig("stopped"));
        await env.StopAsync(stopped);
        var before = await env.StatusAsync(ready, verbose: true);
        var netns = await env.NetNsAsync(ready);

        await env.KillAndRestartAsync();

        var after = await env.StatusAsync(ready, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, after.Status.State);
        Assert.Equal(before.Status.Network.Ip, after.Status.Network.Ip);
        Assert.Equal(before.Status.CreatedAt, after.Status.CreatedAt);
        Assert.Equal(netns, await env.NetNsAsync(ready));
        Assert.Equal(PodSandboxState.SandboxNotready, (await env.StatusAsync(stopped)).Status.State);
        Assert.Equal(2, (await env.ListAsync()).Items.Count);
        // The name is still reserved after the restart.
        var e = await Assert.ThrowsAsync<RpcException>(() => env.RunPodAsync(PodTestEnvironment.PodConfig("survivor", uid: "uid-survivor")));
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);

        // Teardown after the restart still finds everything (CNI DEL from the cached result).
        await env.StopAsync(ready);
        await env.RemoveAsync(ready);
        var left = await env.LeftoversAsync(ready, netns, $"{env.CgroupRoot}/survivor");
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "umount", "ip", "iptables-save")]
    public async Task A_namespace_pin_that_a_crash_left_as_a_plain_file_does_not_block_stopping_and_removing_the_pod()
    {
        // The window: hulld killed between unmounting a pin and deleting its file (or between creating the file and
        // mounting the namespace on it). The churn test hit it at random; here it is made on purpose.
        await using var env = await PodTestEnvironment.StartAsync();
        var id = await env.RunPodAsync(PodTestEnvironment.PodConfig("plainpin", cgroupParent: $"{env.CgroupRoot}/plainpin"));
        var netns = await env.NetNsAsync(id);
        await env.KillAndRestartAsync(whileDown: async () =>
        {
            var umount = await ProcessRunner.RunAsync("umount", [netns]);
            Assert.True(umount.ExitCode == 0, umount.Stderr);
            Assert.True(File.Exists(netns));
        });

        await env.StopAsync(id);
        await env.RemoveAsync(id);
        Assert.Empty((await env.ListAsync()).Items);
        // CNI DEL ran without a namespace, so the IP is released. The bridge plugin can undo its masquerade rule only
        // inside the namespace (containerd leaves it too); the namespace vanishing before DEL is what this test forces.
        var left = (await env.LeftoversAsync(id, netns, $"{env.CgroupRoot}/plainpin")).Where(l => !l.StartsWith("iptables", StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/bin/catatonit", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task A_pod_sharing_its_PID_namespace_runs_catatonit_and_is_not_ready_after_a_restart_once_it_died()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var id = await env.RunPodAsync(SharedPidPod(env, "shared-pid"));
        var status = await env.StatusAsync(id, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
        using var info = System.Text.Json.JsonDocument.Parse(status.Info["info"]);
        int pid = info.RootElement.GetProperty("pid").GetInt32();
        Assert.True(pid > 0, status.Info["info"]);
        Assert.Contains("catatonit", File.ReadAllText($"/proc/{pid}/cmdline"));
        Assert.Equal($"/proc/{pid}/ns/pid", info.RootElement.GetProperty("namespaces").GetProperty("pid").GetString());
        var netns = info.RootElement.GetProperty("namespaces").GetProperty("network").GetString()!;

        // Started by hull-infra, not runc: PID 1 of its own PID namespace, in the pod's network namespace and in its own
        // cgroup under the pod's, uid 65535, no capabilities, no new privileges, and an empty root of its own.
        var procStatus = File.ReadAllLines($"/proc/{pid}/status");
        Assert.Contains(procStatus, l => l == $"NSpid:\t{pid}\t1");
        Assert.Contains(procStatus, l => l == "Uid:\t65535\t65535\t65535\t65535");
        Assert.Contains(procStatus, l => l == "CapEff:\t0000000000000000");
        Assert.Contains(procStatus, l => l == "CapBnd:\t0000000000000000");
        Assert.Contains(procStatus, l => l == "NoNewPrivs:\t1");
        Assert.NotEqual("conmon", File.ReadAllText($"/proc/{ParentOf(pid)}/comm").Trim());
        // Its root is a mount with no parent in a mount namespace of its own: a pod process that may read /proc/1/root
        // (the same uid) finds nothing there, and ".." from there stays put (from a chroot it would climb the host's tree).
        Assert.Equal("/", new FileInfo($"/proc/{pid}/root").LinkTarget);
        var above = await ProcessRunner.RunAsync("ls", ["-A", $"/proc/{pid}/root/.."]);
        Assert.True(above.ExitCode == 0 && above.Stdout.Length == 0, $"/proc/{pid}/root/.. lists: {above.Stdout}");
        Assert.Equal(NamespaceInode(netns), new FileInfo($"/proc/{pid}/ns/net").LinkTarget);
        Assert.Contains(File.ReadAllLines($"/proc/{pid}/cgroup"), l => l.EndsWith($":memory:{env.CgroupRoot}/shared-pid/{id}", StringComparison.Ordinal));

        // A restart while it runs: the pod stays ready with the same process.
        await env.KillAndRestartAsync();
        var again = await env.StatusAsync(id, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, again.Status.State);
        Assert.Contains($"\"pid\": {pid},", again.Info["info"]);

        // The infra process dies while hulld is down: after the restart the pod is reported not ready.
        await env.Hulld.KillAsync();
        HulldProcess.Signal(pid, 9);
        await Task.Delay(500);
        await env.KillAndRestartAsync();
        Assert.Equal(PodSandboxState.SandboxNotready, (await env.StatusAsync(id)).Status.State);

        await env.StopAsync(id);
        await env.RemoveAsync(id);
        var left = await env.LeftoversAsync(id, netns, $"{env.CgroupRoot}/shared-pid");
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/bin/catatonit", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task Stopping_a_shared_PID_pod_kills_its_infra_process_and_one_only_a_pid_file_names_is_found_after_a_crash()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var id = await env.RunPodAsync(SharedPidPod(env, "infra-stop"));
        using (var info = System.Text.Json.JsonDocument.Parse((await env.StatusAsync(id, verbose: true)).Info["info"]))
        {
            int pid = info.RootElement.GetProperty("pid").GetInt32();
            await env.StopAsync(id);
            Assert.False(Hull.Linux.Processes.ProcessInfo.IsAlive(pid), $"infra process {pid} still runs after StopPodSandbox");
            Assert.False(File.Exists(Path.Combine(env.Hulld.State, "sandboxes", id, "infra.pid")));
            Assert.False(Directory.Exists($"/sys/fs/cgroup/memory{env.CgroupRoot}/infra-stop/{id}"), "the infra process's cgroup outlived it");
            await env.RemoveAsync(id);
        }

        // hulld killed after hull-infra started a pod's infra process but before the store recorded the pod: the sandbox
        // directory with hull-infra's pid file is all there is, and the next start's sweep kills the process.
        string orphan = new('e', 64);
        string dir = Directory.CreateDirectory(Path.Combine(env.Hulld.State, "sandboxes", orphan)).FullName;
        string root = Directory.CreateDirectory(Path.Combine(dir, "infra", "rootfs")).FullName;
        string helper = Path.Combine(Path.GetDirectoryName(Repo.HulldDll)!, "hull-infra");
        var started = await ProcessRunner.RunAsync(helper, ["--root", root, "--pid-file", Path.Combine(dir, "infra.pid"), "--", "/usr/bin/catatonit", "-P"]);
        Assert.True(started.ExitCode == 0, started.Stderr);
        int orphanPid = int.Parse(started.Stdout.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Hull.Linux.Processes.ProcessInfo.IsAlive(orphanPid));
        await env.KillAndRestartAsync();
        Assert.False(Hull.Linux.Processes.ProcessInfo.IsAlive(orphanPid), $"the orphaned infra process {orphanPid} survived the sweep");
        Assert.False(Directory.Exists(dir), "the orphaned sandbox directory survived the sweep");
    }

    [E2EFact("/usr/bin/catatonit")]
    public async Task Hull_infra_names_what_it_could_not_do_and_leaves_no_process_or_pid_file()
    {
        string dir = Directory.CreateTempSubdirectory("hull-e2e-infra-").FullName;
        try
        {
            string helper = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Repo.HulldDll)!, "hull-infra"));
            string pidFile = Path.Combine(dir, "infra.pid");
            var badNamespace = await ProcessRunner.RunAsync(helper,
                ["--root", dir, "--pid-file", pidFile, "--net", Path.Combine(dir, "no-such-netns"), "--", "/usr/bin/catatonit", "-P"]);
            Assert.Equal(1, badNamespace.ExitCode);
            Assert.Contains($"cannot open network namespace {dir}/no-such-netns", badNamespace.Stderr);
            var badRoot = await ProcessRunner.RunAsync(helper, ["--root", Path.Combine(dir, "no-such-root"), "--pid-file", pidFile, "--", "/usr/bin/catatonit", "-P"]);
            Assert.Equal(1, badRoot.ExitCode);
            Assert.Contains("the infra process could not start: bind-mounting the root: No such file or directory", badRoot.Stderr);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
            // The child that failed before its exec was still hull-infra: none may be left, alive or unreaped.
            Assert.DoesNotContain(Directory.EnumerateDirectories("/proc"), d => ExecutableOf(d) == helper);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static PodSandboxConfig SharedPidPod(PodTestEnvironment env, string name)
    {
        var config = PodTestEnvironment.PodConfig(name, cgroupParent: $"{env.CgroupRoot}/{name}");
        config.Linux.SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Pod } };
        return config;
    }

    private static string? ExecutableOf(string procDir)
    {
        try
        {
            return new FileInfo(Path.Combine(procDir, "exe")).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static int ParentOf(int pid) =>
        int.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal))[5..].Trim(),
            System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>"net:[inode]" of a pinned namespace file, as /proc/&lt;pid&gt;/ns/net reads.</summary>
    private static string NamespaceInode(string pin) => $"net:[{Hull.Linux.FileStatus.Get(pin).Inode}]";

    private static Process StartListener(string netns, int port)
    {
        var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { $"--net={netns}", "/bin/busybox", "nc", "-l", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    private static async Task<string> ReadListenerAsync(Process listener)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await listener.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            listener.Kill();
        }
        return await listener.StandardOutput.ReadToEndAsync();
    }
}
