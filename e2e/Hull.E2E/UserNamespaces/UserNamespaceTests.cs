using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Hull.Grpc;

namespace Hull.E2E.UserNamespaces;

/// <summary>One hulld with the busybox test image for the user-namespace and recursive read-only tests.</summary>
public sealed class UserNamespaceFixture : IAsyncLifetime
{
    private readonly PushedTestImages _pushed = new();
    private int _next;

    public PodTestEnvironment Env { get; private set; } = null!;
    public string Image { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (Prerequisites.Missing(UserNamespaceTests.Tools) is not null && !Prerequisites.Required) return;
        await _pushed.InitializeAsync();
        Env = await PodTestEnvironment.StartAsync(_pushed.Registry);
        Image = _pushed.Images.Busybox.Reference;
        await Env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = Image } }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
    }

    public string Name(string stem) => $"{stem}-{Interlocked.Increment(ref _next)}";

    public async Task DisposeAsync()
    {
        if (Env is not null) await Env.DisposeAsync();
        await _pushed.DisposeAsync();
    }
}

/// <summary>
/// Pods with hostUsers: false (a user namespace of the pod's own, idmapped rootfs and binds) and recursive read-only
/// binds, with real runc on this kernel.
/// </summary>
public sealed class UserNamespaceTests(UserNamespaceFixture f) : IClassFixture<UserNamespaceFixture>
{
    internal static readonly string[] Tools = ["runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback", "nsenter", "iptables-save", "ip", "docker-registry", "skopeo", "umoci"];

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private const string Forever = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    internal const uint HostBase = 3_000_000_000, Size = 65536;

    private CriClient Cri => f.Env.Cri;

    internal static PodSandboxConfig UsernsPod(string name, uint hostId, string cgroupRoot)
    {
        var config = PodTestEnvironment.PodConfig(name, cgroupParent: $"{cgroupRoot}/{name}");
        var userns = new UserNamespace { Mode = NamespaceMode.Pod };
        userns.Uids.Add(new IDMapping { ContainerId = 0, HostId = hostId, Length = Size });
        userns.Gids.Add(new IDMapping { ContainerId = 0, HostId = hostId, Length = Size });
        config.Linux.SecurityContext = new LinuxSandboxSecurityContext
        {
            NamespaceOptions = new NamespaceOption { Pid = NamespaceMode.Container, UsernsOptions = userns },
        };
        return config;
    }

    private ContainerConfig Config(string name, PodSandboxConfig pod, params string[] command)
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = name }, Image = new ImageSpec { Image = f.Image } };
        config.Command.AddRange(command);
        config.Linux = new LinuxContainerConfig
        {
            SecurityContext = new LinuxContainerSecurityContext
            {
                NamespaceOptions = pod.Linux.SecurityContext?.NamespaceOptions?.Clone() ?? new NamespaceOption { Pid = NamespaceMode.Container },
            },
        };
        return config;
    }

    private async Task<string> RunAsync(string pod, PodSandboxConfig podConfig, ContainerConfig config)
    {
        var id = (await Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
        await Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        return id;
    }

    private async Task<string> ExecAsync(string id, string script)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = 10 };
        request.Cmd.AddRange(["/bin/sh", "-c", script]);
        var r = await Cri.Runtime.ExecSyncAsync(request, deadline: CriClient.In(TimeSpan.FromSeconds(40)));
        Assert.True(r.ExitCode == 0, $"exec \"{script}\" exited {r.ExitCode}: {r.Stderr.ToStringUtf8()}");
        return r.Stdout.ToStringUtf8();
    }

    /// <summary>The host's view of the container's processes: the ones whose cgroup names it.</summary>
    private static List<int> HostPids(string containerId) => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
        .Where(pid => pid > 0 && TryRead($"/proc/{pid}/cgroup")?.Contains(containerId, StringComparison.Ordinal) == true)
        .ToList();

    /// <summary>The upper directory of the container's rootfs overlay, from the host's mount table.</summary>
    private static string UpperDirectory(string containerId) => File.ReadAllLines("/proc/self/mountinfo")
        .Where(l => l.Contains(containerId, StringComparison.Ordinal) && l.Contains(" - overlay ", StringComparison.Ordinal))
        .Select(l => l.Split(',').First(o => o.StartsWith("upperdir=", StringComparison.Ordinal))["upperdir=".Length..])
        .Single();

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Root_inside_a_userns_pod_is_the_mapped_uid_outside_and_sees_host_files_and_its_rootfs_through_the_mapping()
    {
        uint hostId = HostBase + (uint)f.Env.N * Size;
        var podConfig = UsernsPod(f.Name("userns"), hostId, f.Env.CgroupRoot);
        var pod = await f.Env.RunPodAsync(podConfig);
        string volume = Directory.CreateDirectory(Path.Combine(f.Env.Dir, podConfig.Metadata.Name + "-vol")).FullName;
        File.WriteAllText(Path.Combine(volume, "host-file"), "root's\n"); // owned by root on the host
        var config = Config(f.Name("app"), podConfig, "/bin/sh", "-c", Forever);
        config.Mounts.Add(new Mount { ContainerPath = "/vol", HostPath = volume });
        var id = await RunAsync(pod, podConfig, config);

        Assert.Equal("0\n", await ExecAsync(id, "id -u"));
        var uidMap = (await ExecAsync(id, "cat /proc/self/uid_map")).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["0", $"{hostId}", $"{Size}"], uidMap);
        // A process of the exec just run may still be listed and gone a moment later (CI saw one): only those still there count.
        var statuses = HostPids(id).Select(pid => TryRead($"/proc/{pid}/status")).OfType<string>().ToList();
        Assert.NotEmpty(statuses);
        foreach (var status in statuses)
            Assert.Contains(status.Split('\n'), l => l == $"Uid:\t{hostId}\t{hostId}\t{hostId}\t{hostId}");

        // The host's root-owned file reads as root's inside; the image's files too (idmapped layers).
        Assert.Equal("0 0\n", await ExecAsync(id, "stat -c '%u %g' /vol/host-file"));
        Assert.Equal("0\n", await ExecAsync(id, "stat -c %u /bin/busybox"));
        // Root's write to the idmapped volume is root's on disk (what root inside sees is what the host has).
        await ExecAsync(id, "echo x > /vol/written");
        var written = Hull.Linux.FileStatus.Get(Path.Combine(volume, "written"));
        Assert.Equal(0u, written.Uid);

        // A rootfs write lands in the upper directory, owned by the mapped root.
        await ExecAsync(id, "echo y > /rootfs-file");
        var inUpper = Hull.Linux.FileStatus.Get(Path.Combine(UpperDirectory(id), "rootfs-file"));
        Assert.Equal((hostId, hostId), (inUpper.Uid, inUpper.Gid));

        await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id, StringComparison.Ordinal));
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(pod, StringComparison.Ordinal));
    }

    [E2EFact("runc", "conmon", "/usr/bin/catatonit", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback", "nsenter", "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_userns_pod_sharing_its_PID_namespace_has_its_infra_process_inside_the_pods_user_namespace_as_PID_1()
    {
        uint hostId = HostBase + (uint)f.Env.N * Size + 200 * Size;
        var podConfig = UsernsPod(f.Name("userns-pid"), hostId, f.Env.CgroupRoot);
        podConfig.Linux.SecurityContext.NamespaceOptions.Pid = NamespaceMode.Pod;
        var pod = await f.Env.RunPodAsync(podConfig);
        var status = await Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod, Verbose = true }, deadline: CriClient.In(Long));
        using var info = System.Text.Json.JsonDocument.Parse(status.Info["info"]);
        int infra = info.RootElement.GetProperty("pid").GetInt32();
        // Nobody inside the pod's mapping, so host uid hostId + 65535; its PID namespace is owned by the pod's user
        // namespace, which is what lets the containers (root in that namespace only) join it.
        Assert.Contains(File.ReadAllLines($"/proc/{infra}/status"), l => l == $"Uid:\t{hostId + 65535}\t{hostId + 65535}\t{hostId + 65535}\t{hostId + 65535}");

        var id = await RunAsync(pod, podConfig, Config(f.Name("app"), podConfig, "/bin/sh", "-c", Forever));
        Assert.Contains("catatonit", await ExecAsync(id, "cat /proc/1/cmdline"));
        Assert.Equal("0\n", await ExecAsync(id, "id -u"));
        var container = HostPids(id);
        Assert.NotEmpty(container);
        Assert.Equal(new FileInfo($"/proc/{infra}/ns/user").LinkTarget, new FileInfo($"/proc/{container[0]}/ns/user").LinkTarget);
        Assert.Equal(new FileInfo($"/proc/{infra}/ns/pid").LinkTarget, new FileInfo($"/proc/{container[0]}/ns/pid").LinkTarget);

        await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await f.Env.StopAsync(pod);
        Assert.False(Hull.Linux.Processes.ProcessInfo.IsAlive(infra), $"infra process {infra} still runs after StopPodSandbox");
        await f.Env.RemoveAsync(pod);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Two_userns_pods_with_different_mappings_cannot_read_each_others_files()
    {
        uint a = HostBase + (uint)f.Env.N * Size + 100 * Size, b = a + Size;
        var podA = UsernsPod(f.Name("usera"), a, f.Env.CgroupRoot);
        var podB = UsernsPod(f.Name("userb"), b, f.Env.CgroupRoot);
        string idA = await f.Env.RunPodAsync(podA), idB = await f.Env.RunPodAsync(podB);
        // Pod A's root writes a private file into its rootfs: on the host it is uid a's, in A's upper directory.
        var ca = await RunAsync(idA, podA, Config(f.Name("a"), podA, "/bin/sh", "-c", "echo secret > /secret; chmod 600 /secret; " + Forever));
        await ExecAsync(ca, "test -f /secret && cat /secret");
        string upper = UpperDirectory(ca);
        Assert.Equal(a, Hull.Linux.FileStatus.Get(Path.Combine(upper, "secret")).Uid);
        // Pod B binds that directory: through B's mapping the file is nobody's, and B's root may not read it.
        var configB = Config(f.Name("b"), podB, "/bin/sh", "-c", Forever);
        configB.Mounts.Add(new Mount { ContainerPath = "/other", HostPath = upper });
        var cb = await RunAsync(idB, podB, configB);
        Assert.Equal("65534\n", await ExecAsync(cb, "stat -c %u /other/secret"));
        var request = new ExecSyncRequest { ContainerId = cb, Timeout = 10 };
        request.Cmd.AddRange(["/bin/cat", "/other/secret"]);
        var r = await Cri.Runtime.ExecSyncAsync(request, deadline: CriClient.In(TimeSpan.FromSeconds(40)));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("Permission denied", r.Stderr.ToStringUtf8());
        foreach (var (pod, c) in new[] { (idA, ca), (idB, cb) })
        {
            await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = c }, deadline: CriClient.In(Long));
            await f.Env.StopAsync(pod);
            await f.Env.RemoveAsync(pod);
        }
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Recursive_read_only_makes_a_nested_submount_read_only()
    {
        var podConfig = PodTestEnvironment.PodConfig(f.Name("rro"), cgroupParent: $"{f.Env.CgroupRoot}/rro");
        var pod = await f.Env.RunPodAsync(podConfig);
        string volume = Directory.CreateDirectory(Path.Combine(f.Env.Dir, podConfig.Metadata.Name + "-vol")).FullName;
        string nested = Directory.CreateDirectory(Path.Combine(volume, "nested")).FullName;
        Assert.Equal(0, (await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "tmpfs", nested])).ExitCode);
        try
        {
            var config = Config(f.Name("rro"), podConfig, "/bin/sh", "-c", Forever);
            config.Mounts.Add(new Mount { ContainerPath = "/ro", HostPath = volume, Readonly = true, RecursiveReadOnly = true });
            var id = await RunAsync(pod, podConfig, config);
            var request = new ExecSyncRequest { ContainerId = id, Timeout = 10 };
            request.Cmd.AddRange(["/bin/sh", "-c", "touch /ro/nested/x"]);
            var r = await Cri.Runtime.ExecSyncAsync(request, deadline: CriClient.In(TimeSpan.FromSeconds(40)));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("Read-only file system", r.Stderr.ToStringUtf8());
            await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        }
        finally
        {
            await ProcessRunner.RunAsync("umount", ["-l", nested]);
        }
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);
    }

    /// <summary>The host's interface of its default route (else its first that is not lo), from the host's view.</summary>
    private static string HostInterface() =>
        File.ReadAllLines("/proc/net/route").Skip(1).Select(l => l.Split('\t')).Where(f => f.Length > 1 && f[1] == "00000000").Select(f => f[0]).FirstOrDefault()
        ?? Directory.EnumerateFileSystemEntries("/sys/class/net").Select(Path.GetFileName).First(n => n != "lo")!;

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_userns_pod_on_the_host_network_sees_the_hosts_interfaces_through_a_read_only_sys()
    {
        uint hostId = HostBase + (uint)f.Env.N * Size + 400 * Size;
        var podConfig = UsernsPod(f.Name("userns-hostnet"), hostId, f.Env.CgroupRoot);
        podConfig.Linux.SecurityContext.NamespaceOptions.Network = NamespaceMode.Node;
        var pod = await f.Env.RunPodAsync(podConfig);
        var id = await RunAsync(pod, podConfig, Config(f.Name("app"), podConfig, "/bin/sh", "-c", Forever));

        // Root inside is the mapped uid, and the network is the host's: its interface, with its MAC address, in /sys and /proc.
        var uidMap = (await ExecAsync(id, "cat /proc/self/uid_map")).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["0", $"{hostId}", $"{Size}"], uidMap);
        string device = HostInterface();
        string mac = File.ReadAllText($"/sys/class/net/{device}/address").Trim();
        Assert.Equal(mac, (await ExecAsync(id, $"cat /sys/class/net/{device}/address")).Trim());
        Assert.Contains($"{device}:", await ExecAsync(id, "cat /proc/net/dev"));

        // A user namespace may not mount the host network's sysfs: /sys is the host's, bound read-only all the way down
        // (its submounts too). runc's own mounts on top of it (the container's cgroup tmpfs on this cgroup v1 host) are
        // not part of that bind.
        var sysMounts = (await ExecAsync(id, "cat /proc/self/mountinfo")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).Where(m => m[4] == "/sys" || m[4].StartsWith("/sys/", StringComparison.Ordinal))
            .Select(m => (Point: m[4], Options: m[5], Type: m[Array.IndexOf(m, "-") + 1])).ToList();
        Assert.Contains(sysMounts, m => m.Point == "/sys" && m.Type == "sysfs");
        Assert.All(sysMounts.Where(m => !(m.Point == "/sys/fs/cgroup" && m.Type == "tmpfs")),
            m => Assert.True(m.Options.Split(',').Contains("ro"), $"{m.Point} ({m.Type}) is mounted {m.Options}, not read-only"));
        Assert.Contains(sysMounts, m => m.Point.StartsWith("/sys/", StringComparison.Ordinal) && m.Type != "tmpfs"); // a submount was checked

        await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(pod, StringComparison.Ordinal));
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Invalid_user_namespace_options_fail_with_InvalidArgument_and_leave_nothing()
    {
        uint hostId = HostBase + (uint)f.Env.N * Size + 200 * Size;
        var twoMappings = UsernsPod(f.Name("bad"), hostId, f.Env.CgroupRoot);
        twoMappings.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Uids.Add(new IDMapping { ContainerId = Size, HostId = hostId + Size, Length = 1 });
        var notRoot = UsernsPod(f.Name("bad"), hostId, f.Env.CgroupRoot);
        notRoot.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Gids[0].ContainerId = 1;
        var hostPid = UsernsPod(f.Name("bad"), hostId, f.Env.CgroupRoot);
        hostPid.Linux.SecurityContext.NamespaceOptions.Pid = NamespaceMode.Node;
        var containerMode = UsernsPod(f.Name("bad"), hostId, f.Env.CgroupRoot);
        containerMode.Linux.SecurityContext.NamespaceOptions.UsernsOptions.Mode = NamespaceMode.Container;
        foreach (var (config, mentions) in new[] { (twoMappings, "exactly one uid mapping"), (notRoot, "does not map container gid 0"),
                     (hostPid, "node's PID namespace"), (containerMode, "not supported") })
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => f.Env.RunPodAsync(config));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains(mentions, e.Message);
            Assert.DoesNotContain((await f.Env.ListAsync()).Items, p => p.Metadata.Name == config.Metadata.Name);
        }

        // A container whose user namespace is not its pod's.
        var podConfig = UsernsPod(f.Name("mismatch"), hostId, f.Env.CgroupRoot);
        var pod = await f.Env.RunPodAsync(podConfig);
        var config2 = Config(f.Name("hostusers"), podConfig, "/bin/true");
        config2.Linux.SecurityContext.NamespaceOptions.UsernsOptions = null;
        var error = await Assert.ThrowsAsync<RpcException>(() => Cri.Runtime.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = pod, Config = config2, SandboxConfig = podConfig }, deadline: CriClient.In(Long)).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("differs from that of its pod sandbox", error.Message);
        var list = await Cri.Runtime.ListContainersAsync(new ListContainersRequest());
        Assert.DoesNotContain(list.Containers, c => c.Metadata.Name == config2.Metadata.Name);
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);
        Assert.Empty(await f.Env.LeftoversAsync(pod, null, null));
    }
}
