using System.Text.Json;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Grpc.Core;

namespace Hull.E2E.Pods;

/// <summary>
/// Pods that use the node's namespaces, the pinned_images.sandbox pause image, pod stats and resource updates, over the
/// CRI socket with real runc/conmon/CNI.
/// </summary>
public sealed class PodSandboxModeTests(PushedTestImages pushed) : IClassFixture<PushedTestImages>
{
    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save", "docker-registry", "skopeo", "umoci")]
    public async Task A_configured_sandbox_image_is_the_infra_process_of_a_shared_PID_pod_and_goes_with_it()
    {
        var pause = pushed.Images.Pause;
        await using var env = await PodTestEnvironment.StartAsync(pushed.Registry, $"""
            [plugins.'io.containerd.cri.v1.images'.pinned_images]
              sandbox = '{pause.Reference}'
            """);
        string snapshots = Path.Combine(env.Hulld.Root, "snapshots");
        var config = PodTestEnvironment.PodConfig("pause-pid", cgroupParent: $"{env.CgroupRoot}/pause-pid");
        config.Linux.SecurityContext = new LinuxSandboxSecurityContext { NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Pod } };
        var id = await env.RunPodAsync(config);

        var status = await env.StatusAsync(id, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
        using var info = JsonDocument.Parse(status.Info["info"]);
        int pid = info.RootElement.GetProperty("pid").GetInt32();
        Assert.True(pid > 0, status.Info["info"]);
        Assert.Equal(pause.Reference, info.RootElement.GetProperty("infraImage").GetString());
        // The image's entrypoint + cmd, as the image's user, in the pod's PID namespace (it is pid 1 there).
        Assert.Equal("/bin/sleep\0infinity\0", File.ReadAllText($"/proc/{pid}/cmdline"));
        var procStatus = File.ReadAllLines($"/proc/{pid}/status");
        Assert.Contains(procStatus, l => l.StartsWith("Uid:\t65534\t", StringComparison.Ordinal));
        Assert.Contains(procStatus, l => l.StartsWith("NSpid:", StringComparison.Ordinal) && l.TrimEnd().EndsWith("\t1", StringComparison.Ordinal));
        Assert.Contains(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains($"{id}/infra/rootfs", StringComparison.Ordinal));
        int snapshotsWhileRunning = SnapshotCount(snapshots);

        // hulld pulled the image, and it is pinned (the kubelet's image GC leaves it).
        var image = (await env.Cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = pause.Reference } })).Image;
        Assert.NotNull(image);
        Assert.True(image.Pinned);

        // A pod that does not share its PID namespace still has no infra process.
        var plain = await env.RunPodAsync(PodTestEnvironment.PodConfig("pause-plain", cgroupParent: $"{env.CgroupRoot}/pause-plain"));
        using (var plainInfo = JsonDocument.Parse((await env.StatusAsync(plain, verbose: true)).Info["info"]))
            Assert.Equal(0, plainInfo.RootElement.GetProperty("pid").GetInt32());
        Assert.Equal(snapshotsWhileRunning, SnapshotCount(snapshots));
        await env.StopAsync(plain);
        await env.RemoveAsync(plain);

        var netns = info.RootElement.GetProperty("namespaces").GetProperty("network").GetString();
        await env.StopAsync(id);
        Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("/bin/sleep", StringComparison.Ordinal),
            "the pause process outlived StopPodSandbox");
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id, StringComparison.Ordinal));
        Assert.Equal(snapshotsWhileRunning - 1, SnapshotCount(snapshots));
        await env.RemoveAsync(id);
        var left = await env.LeftoversAsync(id, netns, $"{env.CgroupRoot}/pause-pid");
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));

        // A garbage collection (RemoveImage runs one) keeps a live pod's pause snapshot.
        config.Metadata.Attempt = 1;
        var again = await env.RunPodAsync(config);
        int before = SnapshotCount(snapshots);
        var busybox = pushed.Images.Busybox.Reference;
        await env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = busybox } }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
        await env.Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = busybox } });
        Assert.Equal(before, SnapshotCount(snapshots));
        Assert.Equal(PodSandboxState.SandboxReady, (await env.StatusAsync(again)).Status.State);
        await env.StopAsync(again);
        await env.RemoveAsync(again);
        Assert.Equal(before - 1, SnapshotCount(snapshots));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task A_pod_on_the_node_network_PID_and_IPC_namespaces_pins_nothing_attaches_nothing_and_cleans_up()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        string cgroup = $"{env.CgroupRoot}/host-pod";
        var config = PodTestEnvironment.PodConfig("host-pod", cgroupParent: cgroup);
        config.Linux.SecurityContext = new LinuxSandboxSecurityContext
        {
            NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Node, Ipc = NamespaceMode.Node },
        };
        var id = await env.RunPodAsync(config);

        var status = await env.StatusAsync(id, verbose: true);
        Assert.Equal(PodSandboxState.SandboxReady, status.Status.State);
        // containerd reports no pod IP for a host-network pod (the kubelet uses the node's).
        Assert.True(status.Status.Network is null || status.Status.Network.Ip.Length == 0, status.Status.ToString());
        Assert.Equal(NamespaceMode.Node, status.Status.Linux.Namespaces.Options.Network);
        using var info = JsonDocument.Parse(status.Info["info"]);
        var namespaces = info.RootElement.GetProperty("namespaces");
        foreach (var kind in new[] { "network", "ipc", "uts", "pid" }) Assert.Equal("", namespaces.GetProperty(kind).GetString());
        Assert.Equal(0, info.RootElement.GetProperty("pid").GetInt32());
        foreach (var kind in new[] { "net", "ipc", "uts" })
            Assert.False(File.Exists(Path.Combine(env.Hulld.State, "ns", kind, id)), $"a {kind} namespace was pinned for a host pod");
        var brif = $"/sys/class/net/{env.Bridge}/brif";
        Assert.False(Directory.Exists(brif) && Directory.EnumerateFileSystemEntries(brif).Any(), "CNI ADD ran for a host-network pod");
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id, StringComparison.Ordinal)); // host IPC: no shm tmpfs
        var hosts = await File.ReadAllTextAsync(Path.Combine(env.Hulld.State, "sandboxes", id, "hosts"));
        Assert.Equal(await File.ReadAllTextAsync("/etc/hosts"), hosts);

        await env.StopAsync(id);
        await env.StopAsync(id);
        await env.RemoveAsync(id);
        var left = await env.LeftoversAsync(id, null, cgroup);
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task ListPodSandboxStats_measures_every_pod_and_UpdatePodSandboxResources_sets_the_pod_cgroup_limits()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var ids = new List<string>();
        foreach (var name in new[] { "stats-a", "stats-b" })
            ids.Add(await env.RunPodAsync(PodTestEnvironment.PodConfig(name, cgroupParent: $"{env.CgroupRoot}/{name}")));

        var stats = await env.Cri.Runtime.ListPodSandboxStatsAsync(new ListPodSandboxStatsRequest());
        Assert.Equal(ids.Order(), stats.Stats.Select(s => s.Attributes.Id).Order());
        foreach (var s in stats.Stats)
        {
            Assert.NotNull(s.Linux.Cpu);
            Assert.NotNull(s.Linux.Memory);
            Assert.True(s.Linux.Cpu.Timestamp > 0);
            Assert.NotNull(s.Linux.Memory.WorkingSetBytes);
            Assert.NotNull(s.Linux.Network);
            Assert.Equal("eth0", s.Linux.Network.DefaultInterface?.Name);
        }
        var one = await env.Cri.Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = ids[0] });
        Assert.Equal("stats-a", one.Stats.Attributes.Metadata.Name);

        const long limit = 96L << 20;
        await env.Cri.Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
        {
            PodSandboxId = ids[0],
            Resources = new LinuxContainerResources { MemoryLimitInBytes = limit, CpuShares = 512, CpuQuota = 50000, CpuPeriod = 100000 },
        });
        string cgroup = $"{env.CgroupRoot}/stats-a";
        if (File.Exists("/sys/fs/cgroup/cgroup.controllers"))
        {
            Assert.Equal(limit.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText($"/sys/fs/cgroup{cgroup}/memory.max").Trim());
            Assert.Equal("50000 100000", File.ReadAllText($"/sys/fs/cgroup{cgroup}/cpu.max").Trim());
        }
        else
        {
            Assert.Equal(limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
                File.ReadAllText($"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes").Trim());
            Assert.Equal("512", File.ReadAllText($"/sys/fs/cgroup/cpu{cgroup}/cpu.shares").Trim());
            Assert.Equal("50000", File.ReadAllText($"/sys/fs/cgroup/cpu{cgroup}/cpu.cfs_quota_us").Trim());
        }
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task With_the_systemd_cgroup_driver_the_pod_cgroup_is_the_kubelets_slice_and_anything_else_is_refused()
    {
        // No pod here starts a process (none shares its PID namespace), so this runs on nodes without systemd too.
        await using var env = await PodTestEnvironment.StartAsync(null, """
            [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
              SystemdCgroup = true
            """);
        var runtimeConfig = await env.Cri.Runtime.RuntimeConfigAsync(new RuntimeConfigRequest());
        Assert.Equal(CgroupDriver.Systemd, runtimeConfig.Linux.CgroupDriver);

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            env.RunPodAsync(PodTestEnvironment.PodConfig("sd-bad", cgroupParent: $"{env.CgroupRoot}/sd-bad")));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("not a systemd slice", e.Message);
        Assert.Empty((await env.ListAsync()).Items);

        string slice = $"hulle2e{env.N}-pod{Guid.NewGuid():N}.slice";
        var id = await env.RunPodAsync(PodTestEnvironment.PodConfig("sd-ok", cgroupParent: slice));
        using (var info = JsonDocument.Parse((await env.StatusAsync(id, verbose: true)).Info["info"]))
            Assert.Equal(slice, info.RootElement.GetProperty("cgroupParent").GetString());
        // Hull made no cgroup of its own for it, in any hierarchy.
        Assert.DoesNotContain(Directory.EnumerateDirectories("/sys/fs/cgroup"),
            h => Directory.Exists(Path.Combine(h, "hull", id)) || Directory.EnumerateDirectories(h, "*.slice").Any(d => d.EndsWith(slice, StringComparison.Ordinal)));
        var stats = await env.Cri.Runtime.PodSandboxStatsAsync(new PodSandboxStatsRequest { PodSandboxId = id });
        Assert.NotNull(stats.Stats.Linux.Cpu);
        await env.Cri.Runtime.UpdatePodSandboxResourcesAsync(new UpdatePodSandboxResourcesRequest
        {
            PodSandboxId = id,
            Resources = new LinuxContainerResources { MemoryLimitInBytes = 64L << 20 },
        });
        await env.StopAsync(id);
        await env.RemoveAsync(id);
        var left = await env.LeftoversAsync(id, null, null);
        Assert.True(left.Count == 0, "left behind: " + string.Join("; ", left));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "ip", "iptables-save")]
    public async Task At_start_hulld_removes_namespace_pins_and_sandbox_directories_no_pod_owns()
    {
        await using var env = await PodTestEnvironment.StartAsync();
        var kept = await env.RunPodAsync(PodTestEnvironment.PodConfig("kept", cgroupParent: $"{env.CgroupRoot}/kept"));
        string stray = SandboxIdOf("stray");
        await env.KillAndRestartAsync(() =>
        {
            // What a crash between making a pod's pieces and persisting it would leave.
            foreach (var kind in new[] { "net", "ipc", "uts" }) File.WriteAllText(Path.Combine(env.Hulld.State, "ns", kind, stray), "");
            Directory.CreateDirectory(Path.Combine(env.Hulld.State, "sandboxes", stray));
            File.WriteAllText(Path.Combine(env.Hulld.State, "sandboxes", stray, "hosts"), "");
            return Task.CompletedTask;
        });
        foreach (var kind in new[] { "net", "ipc", "uts" })
        {
            Assert.False(File.Exists(Path.Combine(env.Hulld.State, "ns", kind, stray)), kind);
            Assert.True(File.Exists(Path.Combine(env.Hulld.State, "ns", kind, kept)), kind);
        }
        Assert.False(Directory.Exists(Path.Combine(env.Hulld.State, "sandboxes", stray)));
        Assert.Contains($"pod sandbox {stray}, which the store does not know", env.Hulld.Log);
        Assert.Equal(PodSandboxState.SandboxReady, (await env.StatusAsync(kept)).Status.State);
    }

    private static string SandboxIdOf(string seed) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(seed + Guid.NewGuid())));

    /// <summary>Snapshot directories of hulld's snapshotter (one per snapshot, named by its numeric id).</summary>
    private static int SnapshotCount(string snapshotsRoot) =>
        Directory.EnumerateDirectories(snapshotsRoot).SelectMany(Directory.EnumerateDirectories)
            .Count(d => long.TryParse(Path.GetFileName(d), out _));
}
