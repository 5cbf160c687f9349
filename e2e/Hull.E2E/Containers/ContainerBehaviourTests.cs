using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.E2E.Pods;
using Grpc.Core;

namespace Hull.E2E.Containers;

/// <summary>
/// One hulld, one pod and the busybox test image for the whole class, so the behaviours cri-tools' <c>pkg/validate</c>
/// checks for containers, security contexts, logs and exec run quickly one after another.
/// </summary>
public sealed class ContainerBehaviourFixture : IAsyncLifetime
{
    private readonly PushedTestImages _pushed = new();
    private int _next;

    public PodTestEnvironment Env { get; private set; } = null!;
    /// <summary>A CDI spec directory hulld reads (one test device, env var and mount).</summary>
    public CdiFixture Cdi { get; private set; } = null!;
    public PodSandboxConfig PodConfig { get; private set; } = null!;
    public string Pod { get; private set; } = "";
    public string Image { get; private set; } = "";
    /// <summary>The pushed test images (the multilayer one is mounted as an image volume).</summary>
    public TestImages Images => _pushed.Images;
    public bool Ready { get; private set; }

    public async Task InitializeAsync()
    {
        if (Prerequisites.Missing(ContainerBehaviourTests.Tools) is not null && !Prerequisites.Required) return;
        await _pushed.InitializeAsync();
        Cdi = CdiFixture.Create();
        Env = await PodTestEnvironment.StartAsync(_pushed.Registry, Cdi.ConfigToml);
        PodConfig = PodTestEnvironment.PodConfig("behaviour", cgroupParent: $"{Env.CgroupRoot}/behaviour");
        PodConfig.LogDirectory = Path.Combine(Env.Dir, "logs", "behaviour");
        Pod = await Env.RunPodAsync(PodConfig);
        Image = _pushed.Images.Busybox.Reference;
        await Env.Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = Image } }, deadline: CriClient.In(TimeSpan.FromSeconds(60)));
        Ready = true;
    }

    /// <summary>A container name not used before in the pod.</summary>
    public string Name(string stem) => $"{stem}-{Interlocked.Increment(ref _next)}";

    public async Task DisposeAsync()
    {
        if (Env is not null) await Env.DisposeAsync();
        Cdi?.Dispose();
        await _pushed.DisposeAsync();
    }
}

public sealed partial class ContainerBehaviourTests(ContainerBehaviourFixture f) : IClassFixture<ContainerBehaviourFixture>
{
    internal static readonly string[] Tools = ["runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback", "nsenter", "iptables-save", "ip", "docker-registry", "skopeo", "umoci"];

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);
    private const string Forever = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

    private CriClient Cri => f.Env.Cri;

    // ---------------------------------------------------------------- CDI

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_CDI_device_asked_for_by_the_CRI_field_or_an_annotation_brings_its_node_env_and_mount()
    {
        var byField = Config(f.Name("cdi-field"), "/bin/sh", "-c", Forever);
        byField.CDIDevices.Add(new CDIDevice { Name = CdiFixture.QualifiedName });
        var byAnnotation = Config(f.Name("cdi-annotation"), "/bin/sh", "-c", Forever);
        foreach (var (key, value) in f.Cdi.Annotations) byAnnotation.Annotations[key] = value;
        foreach (var config in new[] { byField, byAnnotation })
        {
            var id = await RunAsync(config);
            var exec = await ExecAsync(id, ["/bin/sh", "-c",
                $"stat -c '%t %T %F' {CdiFixture.ContainerDevicePath}; echo ${CdiFixture.EnvName}; cat {CdiFixture.MountContainerPath}/{CdiFixture.MountedFileName}; " +
                $"head -c 1 {CdiFixture.ContainerDevicePath}; echo read=$?"]);
            var lines = exec.Stdout.ToStringUtf8();
            Assert.Equal(0, exec.ExitCode);
            Assert.Contains($"{f.Cdi.Major:x} {f.Cdi.Minor:x} character special file", lines);
            Assert.Contains(CdiFixture.EnvValue + "\n", lines);
            Assert.Contains(CdiFixture.MountedFileContent, lines);
            Assert.Contains("read=0", lines); // the device cgroup lets the container use it
            await RemoveAsync(id);
        }
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task An_unknown_CDI_device_fails_CreateContainer_naming_it_and_leaves_nothing()
    {
        var config = Config(f.Name("cdi-unknown"), "/bin/sh", "-c", Forever);
        config.CDIDevices.Add(new CDIDevice { Name = CdiFixture.UnknownDevice });
        await AssertRefusedAsync(config, StatusCode.NotFound, CdiFixture.UnknownDevice);
    }

    // ---------------------------------------------------------------- events

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Events_arrive_in_order_with_the_pod_status_and_all_its_container_statuses()
    {
        var received = Channel.CreateUnbounded<ContainerEventResponse>();
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            try
            {
                using var stream = Cri.Runtime.GetContainerEvents(new GetEventsRequest(), cancellationToken: stop.Token);
                await foreach (var e in stream.ResponseStream.ReadAllAsync(stop.Token))
                    received.Writer.TryWrite(e);
            }
            catch (Exception) when (stop.IsCancellationRequested) { }
        });
        await Task.Delay(500); // the subscription is in place

        // A pod of its own, so its sandbox events are part of the sequence too.
        var podConfig = PodTestEnvironment.PodConfig("events", cgroupParent: $"{f.Env.CgroupRoot}/events");
        var pod = await f.Env.RunPodAsync(podConfig);
        var config = Config(f.Name("ev"), "/bin/sh", "-c", Forever);
        var id = (await Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod, Config = config, SandboxConfig = podConfig }, deadline: CriClient.In(Long))).ContainerId;
        await Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.In(Long));
        await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        await f.Env.StopAsync(pod);
        await f.Env.RemoveAsync(pod);

        var events = new List<ContainerEventResponse>();
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
            while (events.Count(e => e.ContainerId == pod && e.ContainerEventType == ContainerEventType.ContainerDeletedEvent) == 0)
                events.Add(await received.Reader.ReadAsync(wait.Token));
        await stop.CancelAsync();
        await reader;

        var mine = events.Where(e => e.ContainerId == id).ToList();
        Assert.Equal([ContainerEventType.ContainerCreatedEvent, ContainerEventType.ContainerStartedEvent,
            ContainerEventType.ContainerStoppedEvent, ContainerEventType.ContainerDeletedEvent], mine.Select(e => e.ContainerEventType));
        foreach (var e in mine)
        {
            Assert.NotNull(e.PodSandboxStatus);
            Assert.Equal(pod, e.PodSandboxStatus.Id);
            Assert.Equal(podConfig.Metadata.Uid, e.PodSandboxStatus.Metadata.Uid);
            Assert.Equal(PodSandboxState.SandboxReady, e.PodSandboxStatus.State);
            Assert.True(e.CreatedAt > 0);
        }
        // Each event carries the container statuses as they were at that change.
        Assert.Equal(ContainerState.ContainerCreated, Assert.Single(mine[0].ContainersStatuses, s => s.Id == id).State);
        Assert.Equal(ContainerState.ContainerRunning, Assert.Single(mine[1].ContainersStatuses, s => s.Id == id).State);
        var exited = Assert.Single(mine[2].ContainersStatuses, s => s.Id == id);
        Assert.Equal(ContainerState.ContainerExited, exited.State);
        Assert.Equal(0, exited.ExitCode);
        Assert.DoesNotContain(mine[3].ContainersStatuses, s => s.Id == id);
        Assert.Equal(config.Metadata.Name, mine[1].ContainersStatuses.Single(s => s.Id == id).Metadata.Name);
        Assert.True(mine.Zip(mine.Skip(1)).All(p => p.First.CreatedAt <= p.Second.CreatedAt), "event times go forward");

        // The pod's own events, with its id as the container id: started, stopped, deleted (with its last status).
        var podEvents = events.Where(e => e.ContainerId == pod).ToList();
        Assert.Equal([ContainerEventType.ContainerStartedEvent, ContainerEventType.ContainerStoppedEvent, ContainerEventType.ContainerDeletedEvent],
            podEvents.Select(e => e.ContainerEventType));
        Assert.Equal(PodSandboxState.SandboxReady, podEvents[0].PodSandboxStatus.State);
        Assert.Equal(PodSandboxState.SandboxNotready, podEvents[1].PodSandboxStatus.State);
        Assert.Equal(pod, podEvents[2].PodSandboxStatus.Id);
        Assert.True(events.IndexOf(podEvents[0]) < events.IndexOf(mine[0]) && events.IndexOf(mine[3]) < events.IndexOf(podEvents[1]));
    }

    // ---------------------------------------------------------------- process: exit codes, env, args, working dir

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Exit_codes_are_reported_with_Completed_or_Error()
    {
        var ok = await RunAsync(Config(f.Name("exit0"), "/bin/true"));
        var failed = await RunAsync(Config(f.Name("exit7"), "/bin/sh", "-c", "exit 7"));
        var s0 = await WaitExitedAsync(ok);
        var s7 = await WaitExitedAsync(failed);
        Assert.Equal((0, "Completed"), (s0.ExitCode, s0.Reason));
        Assert.Equal((7, "Error"), (s7.ExitCode, s7.Reason));
        Assert.True(s7.FinishedAt >= s7.StartedAt && s7.StartedAt > 0);
        await RemoveAsync(ok, failed);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Env_args_and_working_dir_reach_the_process()
    {
        var config = Config(f.Name("env"));
        config.Command.Add("/bin/sh");
        config.Args.AddRange(["-c", "echo \"$FOO|$BAR|$(pwd)|$0|$1\"; " + Forever, "zero", "one"]);
        config.Envs.Add(new KeyValue { Key = "FOO", Value = "foo value" });
        config.Envs.Add(new KeyValue { Key = "BAR", Value = "b=a=r" });
        config.WorkingDir = "/home/hulltest";
        var id = await RunAsync(config);
        var line = await WaitForLogAsync(config, l => l.Contains('|'));
        Assert.EndsWith(" stdout F foo value|b=a=r|/home/hulltest|zero|one", line);
        // The image's working dir (/work) and PATH are the defaults when the config sets none.
        var plain = await RunAsync(Config(f.Name("defaults"), "/bin/sh", "-c", Forever));
        var exec = await ExecAsync(plain, ["/bin/sh", "-c", "pwd; echo $PATH"]);
        Assert.StartsWith("/work\n/usr/local/sbin:", exec.Stdout.ToStringUtf8());
        await RemoveAsync(id, plain);
    }

    // ---------------------------------------------------------------- logs

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task The_log_is_in_the_CRI_format_and_ReopenContainerLog_starts_a_new_file()
    {
        var config = Config(f.Name("log"), "/bin/sh", "-c", "echo first-out; echo first-err >&2; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done");
        var id = await RunAsync(config);
        string path = LogPath(config);
        await WaitForLogAsync(config, l => l.EndsWith(" tick-3", StringComparison.Ordinal));
        var lines = File.ReadAllLines(path);
        Assert.All(lines, l => Assert.Matches(CriLogLine(), l));
        Assert.Contains(lines, l => l.EndsWith(" stdout F first-out", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith(" stderr F first-err", StringComparison.Ordinal));
        // Timestamps are RFC 3339 with nanoseconds, as the kubelet parses them.
        Assert.True(DateTimeOffset.TryParse(lines[0].Split(' ')[0], out var at) && Math.Abs((DateTimeOffset.UtcNow - at).TotalMinutes) < 5);

        // Rotation as the kubelet does it: rename, reopen; new lines go to a new file at the same path.
        File.Move(path, path + ".rotated");
        await Cri.Runtime.ReopenContainerLogAsync(new ReopenContainerLogRequest { ContainerId = id });
        await WaitForLogAsync(config, l => l.Contains(" stdout F tick-", StringComparison.Ordinal));
        var fresh = File.ReadAllLines(path);
        Assert.DoesNotContain(fresh, l => l.EndsWith(" first-out", StringComparison.Ordinal));
        Assert.All(fresh, l => Assert.Matches(CriLogLine(), l));
        int lastOld = int.Parse(File.ReadAllLines(path + ".rotated").Last(l => l.Contains("tick-")).Split("tick-")[1]);
        int firstNew = int.Parse(fresh.First(l => l.Contains("tick-")).Split("tick-")[1]);
        Assert.True(firstNew > lastOld, $"the new file starts after the rotated one ({firstNew} > {lastOld})");

        // Reopening a stopped container's log is refused.
        await Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 5 }, deadline: CriClient.In(Long));
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            Cri.Runtime.ReopenContainerLogAsync(new ReopenContainerLogRequest { ContainerId = id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        await RemoveAsync(id);
    }

    // ---------------------------------------------------------------- users and groups

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Run_as_user_username_group_and_supplemental_groups_are_what_id_shows()
    {
        var byUid = Config(f.Name("uid"), "/bin/sh", "-c", Forever);
        byUid.Linux = new LinuxContainerConfig
        {
            SecurityContext = new LinuxContainerSecurityContext
            {
                RunAsUser = new Int64Value { Value = 1000 },
                RunAsGroup = new Int64Value { Value = 2000 },
                SupplementalGroups = { 3000 },
            },
        };
        var uid = await RunAsync(byUid);
        var id = (await ExecAsync(uid, ["/bin/sh", "-c", "id -u; id -g; id -G"])).Stdout.ToStringUtf8().Split('\n');
        Assert.Equal("1000", id[0]);
        Assert.Equal("2000", id[1]);
        var groups = id[2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("3000", groups);
        Assert.Contains("2000", groups); // hullgroup lists hulltest in the image's /etc/group
        var status = (await StatusAsync(uid)).Status;
        Assert.Equal(1000, status.User.Linux.Uid);
        Assert.Equal(2000, status.User.Linux.Gid);
        Assert.Contains(3000L, status.User.Linux.SupplementalGroups);
        Assert.Equal(Signal.Sigterm, status.StopSignal); // the image sets none

        var byName = Config(f.Name("uname"), "/bin/sh", "-c", Forever);
        byName.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { RunAsUsername = "hulltest" } };
        byName.StopSignal = Signal.Sigusr1;
        var name = await RunAsync(byName);
        var who = (await ExecAsync(name, ["/bin/sh", "-c", "id -un; id -u; id -g; echo $HOME"])).Stdout.ToStringUtf8();
        Assert.Equal("hulltest\n1000\n1000\n/home/hulltest\n", who);
        status = (await StatusAsync(name)).Status;
        Assert.Equal((1000L, 1000L), (status.User.Linux.Uid, status.User.Linux.Gid));
        Assert.Equal(Signal.Sigusr1, status.StopSignal);
        await RemoveAsync(uid, name);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_user_the_image_does_not_have_is_InvalidArgument_and_leaves_nothing()
    {
        var config = Config(f.Name("nouser"), "/bin/true");
        config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { RunAsUsername = "nosuchuser" } };
        await AssertRefusedAsync(config, StatusCode.InvalidArgument, "nosuchuser");
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Invalid_resources_are_InvalidArgument_and_leave_nothing()
    {
        var period = Config(f.Name("badcpu"), "/bin/true");
        period.Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { CpuPeriod = -1 } };
        await AssertRefusedAsync(period, StatusCode.InvalidArgument, "cpu period");
        var memory = Config(f.Name("badmem"), "/bin/true");
        memory.Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { MemoryLimitInBytes = -5 } };
        await AssertRefusedAsync(memory, StatusCode.InvalidArgument, "memory limit");
        var oom = Config(f.Name("badoom"), "/bin/true");
        oom.Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { OomScoreAdj = 5000 } };
        await AssertRefusedAsync(oom, StatusCode.InvalidArgument, "oom_score_adj");
    }

    // ---------------------------------------------------------------- mounts and root file system

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Bind_mounts_read_only_mounts_a_missing_source_and_a_read_only_rootfs()
    {
        var host = Directory.CreateDirectory(Path.Combine(f.Env.Dir, "mount-" + f.Name("m"))).FullName;
        File.WriteAllText(Path.Combine(host, "hello.txt"), "from the host\n");
        string missing = Path.Combine(f.Env.Dir, "created-" + f.Name("m"), "deep");
        var config = Config(f.Name("mounts"), "/bin/sh", "-c", Forever);
        config.Mounts.Add(new Mount { ContainerPath = "/rw", HostPath = host });
        config.Mounts.Add(new Mount { ContainerPath = "/ro", HostPath = host, Readonly = true });
        config.Mounts.Add(new Mount { ContainerPath = "/made", HostPath = missing });
        config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { ReadonlyRootfs = true } };
        var id = await RunAsync(config);

        Assert.Equal("from the host\n", (await ExecAsync(id, ["/bin/cat", "/ro/hello.txt"])).Stdout.ToStringUtf8());
        Assert.Equal(0, (await ExecAsync(id, ["/bin/sh", "-c", "echo from-container > /rw/written"])).ExitCode);
        Assert.Equal("from-container\n", File.ReadAllText(Path.Combine(host, "written")));
        var ro = await ExecAsync(id, ["/bin/sh", "-c", "echo x > /ro/nope"]);
        Assert.NotEqual(0, ro.ExitCode);
        Assert.Contains("Read-only file system", ro.Stderr.ToStringUtf8());
        var rootfs = await ExecAsync(id, ["/bin/touch", "/in-rootfs"]);
        Assert.NotEqual(0, rootfs.ExitCode);
        Assert.Contains("Read-only file system", rootfs.Stderr.ToStringUtf8());
        // As containerd does, a host path that does not exist is created as a directory and mounted.
        Assert.True(Directory.Exists(missing));
        Assert.Equal(0, (await ExecAsync(id, ["/bin/sh", "-c", "test -d /made && touch /made/x"])).ExitCode);
        Assert.True(File.Exists(Path.Combine(missing, "x")));
        var mounts = (await StatusAsync(id)).Status.Mounts;
        Assert.Contains(mounts, m => m.ContainerPath == "/ro" && m.Readonly && m.HostPath == host);
        await RemoveAsync(id);
    }

    // ---------------------------------------------------------------- capabilities and seccomp

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Capabilities_added_and_dropped_show_in_proc_self_status()
    {
        async Task<string> CapEffAsync(Capability? caps)
        {
            var config = Config(f.Name("caps"), "/bin/sh", "-c", Forever);
            config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { Capabilities = caps } };
            var id = await RunAsync(config);
            var status = (await ExecAsync(id, ["/bin/grep", "CapEff", "/proc/self/status"])).Stdout.ToStringUtf8();
            await RemoveAsync(id);
            return status.Split(':')[1].Trim();
        }

        // containerd's default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP
        // NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
        Assert.Equal("00000000a80425fb", await CapEffAsync(null));
        Assert.Equal("0000000000000000", await CapEffAsync(new Capability { DropCapabilities = { "ALL" } }));
        Assert.Equal("0000000000001000", await CapEffAsync(new Capability { DropCapabilities = { "ALL" }, AddCapabilities = { "NET_ADMIN" } }));
        var withAdmin = Convert.ToUInt64(await CapEffAsync(new Capability { AddCapabilities = { "NET_ADMIN" }, DropCapabilities = { "CHOWN" } }), 16);
        Assert.Equal((0xa80425fbUL | 1UL << 12) & ~1UL, withAdmin);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Seccomp_RuntimeDefault_denies_unshare_and_a_Localhost_profile_is_applied()
    {
        async Task<(ExecSyncResponse Result, string Spec)> RunWithAsync(SecurityProfile profile, params string[] command)
        {
            var config = Config(f.Name("seccomp"), "/bin/sh", "-c", Forever);
            config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { Seccomp = profile } };
            var id = await RunAsync(config);
            var result = await ExecAsync(id, command);
            var spec = (await StatusAsync(id, verbose: true)).Info["info"];
            await RemoveAsync(id);
            return (result, spec);
        }

        // unshare(CLONE_NEWUSER) needs no capability, but the default profile allows unshare only with CAP_SYS_ADMIN.
        string[] unshare = ["/bin/busybox", "unshare", "-U", "/bin/true"];
        var (denied, spec) = await RunWithAsync(new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault }, unshare);
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Operation not permitted", denied.Stderr.ToStringUtf8());
        using (var info = JsonDocument.Parse(spec))
        {
            var seccomp = info.RootElement.GetProperty("runtimeSpec").GetProperty("linux").GetProperty("seccomp");
            Assert.Equal("SCMP_ACT_ERRNO", seccomp.GetProperty("defaultAction").GetString());
        }
        var (allowed, unconfinedSpec) = await RunWithAsync(new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined }, unshare);
        Assert.True(allowed.ExitCode == 0, "unconfined, unshare -U works: " + allowed.Stderr.ToStringUtf8());
        using (var info = JsonDocument.Parse(unconfinedSpec))
            Assert.False(info.RootElement.GetProperty("runtimeSpec").GetProperty("linux").TryGetProperty("seccomp", out _));

        // A Localhost profile that refuses mkdir with EPERM.
        string profile = Path.Combine(f.Env.Dir, "no-mkdir.json");
        File.WriteAllText(profile, """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
            """);
        var (mkdir, _) = await RunWithAsync(new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Localhost, LocalhostRef = profile },
            "/bin/mkdir", "/tmp/x");
        Assert.NotEqual(0, mkdir.ExitCode);
        Assert.Contains("Operation not permitted", mkdir.Stderr.ToStringUtf8());
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task The_deprecated_seccomp_profile_path_is_honoured_and_a_custom_path_is_InvalidArgument()
    {
        // Older kubelets send only the string field; /proc/self/status says whether a filter is in force (2) or not (0).
        async Task<string> SeccompModeAsync(string path)
        {
            var config = Config(f.Name("legacy-seccomp"), "/bin/sh", "-c", Forever);
#pragma warning disable CS0612 // the deprecated field is what this test sends
            config.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { SeccompProfilePath = path } };
#pragma warning restore CS0612
            var id = await RunAsync(config);
            var status = (await ExecAsync(id, ["/bin/grep", "^Seccomp:", "/proc/self/status"])).Stdout.ToStringUtf8();
            await RemoveAsync(id);
            return status.Split(':')[1].Trim();
        }

        Assert.Equal("2", await SeccompModeAsync("runtime/default"));
        Assert.Equal("2", await SeccompModeAsync("docker/default"));
        Assert.Equal("0", await SeccompModeAsync("unconfined"));

        var custom = Config(f.Name("legacy-seccomp"), "/bin/true");
#pragma warning disable CS0612
        custom.Linux = new LinuxContainerConfig { SecurityContext = new LinuxContainerSecurityContext { SeccompProfilePath = "/etc/no-prefix.json" } };
#pragma warning restore CS0612
        await AssertRefusedAsync(custom, StatusCode.InvalidArgument, "/etc/no-prefix.json");
    }

    // ---------------------------------------------------------------- resources

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task Memory_and_cpu_limits_are_in_the_cgroup_and_UpdateContainerResources_changes_them()
    {
        var config = Config(f.Name("limits"), "/bin/sh", "-c", Forever);
        config.Linux = new LinuxContainerConfig
        {
            Resources = new LinuxContainerResources { MemoryLimitInBytes = 64 << 20, CpuPeriod = 100_000, CpuQuota = 50_000, CpuShares = 512 },
        };
        var id = await RunAsync(config);
        var cgroup = await CgroupFilesAsync(id);
        Assert.Equal((64L << 20).ToString(), cgroup.Read("memory", "memory.limit_in_bytes", "memory.max"));
        Assert.Equal("50000 100000", cgroup.CpuMax());
        if (!CgroupFiles.Unified) Assert.Equal("512", cgroup.Read("cpu", "cpu.shares", null));

        await Cri.Runtime.UpdateContainerResourcesAsync(new UpdateContainerResourcesRequest
        {
            ContainerId = id,
            Linux = new LinuxContainerResources { MemoryLimitInBytes = 128 << 20, CpuPeriod = 100_000, CpuQuota = 20_000, CpuShares = 256 },
        });
        Assert.Equal((128L << 20).ToString(), cgroup.Read("memory", "memory.limit_in_bytes", "memory.max"));
        Assert.Equal("20000 100000", cgroup.CpuMax());
        if (!CgroupFiles.Unified) Assert.Equal("256", cgroup.Read("cpu", "cpu.shares", null));
        var resources = (await StatusAsync(id)).Status.Resources.Linux;
        Assert.Equal((128L << 20, 20_000L, 256L), (resources.MemoryLimitInBytes, resources.CpuQuota, resources.CpuShares));
        await RemoveAsync(id);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_container_over_its_memory_limit_is_reported_OOMKilled()
    {
        // The shell keeps 100 MiB in a variable under a 16 MiB limit.
        var config = Config(f.Name("oom"), "/bin/sh", "-c", "x=$(head -c 104857600 /dev/zero | tr '\\000' a); echo survived");
        config.Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources { MemoryLimitInBytes = 16 << 20 } };
        var id = await RunAsync(config);
        var status = await WaitExitedAsync(id);
        Assert.Equal("OOMKilled", status.Reason);
        Assert.Equal(137, status.ExitCode);
        await RemoveAsync(id);
    }

    // ---------------------------------------------------------------- exec

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task ExecSync_returns_output_exit_code_and_honours_its_timeout()
    {
        var id = await RunAsync(Config(f.Name("exec"), "/bin/sh", "-c", Forever));
        var result = await ExecAsync(id, ["/bin/sh", "-c", "echo out; echo err >&2; exit 5"]);
        Assert.Equal(("out\n", "err\n", 5), (result.Stdout.ToStringUtf8(), result.Stderr.ToStringUtf8(), result.ExitCode));
        // Large output arrives whole.
        var big = await ExecAsync(id, ["/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\000' a"]);
        Assert.Equal(1 << 20, big.Stdout.Length);
        // A command that does not exist is an error naming it (containerd answers the same way).
        var missing = await Assert.ThrowsAsync<RpcException>(() => ExecAsync(id, ["/no/such/binary"]));
        Assert.Contains("/no/such/binary", missing.Message);
        // The deadline kills the command's processes and returns even though a background child holds stdout.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var timedOut = await Assert.ThrowsAsync<RpcException>(() => ExecAsync(id, ["/bin/sh", "-c", "sleep 60 & sleep 60"], timeout: 2));
        Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"ExecSync with a 2 s timeout took {sw.Elapsed}");
        var left = await ExecAsync(id, ["/bin/sh", "-c", "ps -o args | grep -c '^sleep 60' || true"]);
        Assert.Equal("0", left.Stdout.ToStringUtf8().Trim());
        await RemoveAsync(id);
    }

    // ---------------------------------------------------------------- helpers

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(Z|[+-]\d\d:\d\d) (stdout|stderr) [PF] ")]
    private static partial Regex CriLogLine();

    private ContainerConfig Config(string name, params string[] command)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = f.Image },
            LogPath = $"{name}/0.log",
        };
        config.Command.AddRange(command);
        return config;
    }

    private string LogPath(ContainerConfig config) => Path.Combine(f.PodConfig.LogDirectory, config.LogPath);

    private async Task<string> RunAsync(ContainerConfig config)
    {
        var id = (await Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = f.Pod, Config = config, SandboxConfig = f.PodConfig }, deadline: CriClient.In(Long))).ContainerId;
        await Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
        return id;
    }

    private async Task RemoveAsync(params string[] ids)
    {
        foreach (var id in ids) await Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.In(Long));
    }

    private Task<ContainerStatusResponse> StatusAsync(string id, bool verbose = false) =>
        Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id, Verbose = verbose }).ResponseAsync;

    private async Task<Api.Cri.ContainerStatus> WaitExitedAsync(string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var status = (await StatusAsync(id)).Status;
            if (status.State == ContainerState.ContainerExited) return status;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"container {id} did not exit: {status}");
            await Task.Delay(100);
        }
    }

    private async Task<string> WaitForLogAsync(ContainerConfig config, Func<string, bool> match)
    {
        string path = LogPath(config);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            if (File.Exists(path) && File.ReadAllLines(path).FirstOrDefault(match) is { } line) return line;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no matching line in {path}: " + (File.Exists(path) ? File.ReadAllText(path) : "(no file)"));
            await Task.Delay(100);
        }
    }

    private Task<ExecSyncResponse> ExecAsync(string id, string[] cmd, long timeout = 10)
    {
        var request = new ExecSyncRequest { ContainerId = id, Timeout = timeout };
        request.Cmd.AddRange(cmd);
        return Cri.Runtime.ExecSyncAsync(request, deadline: CriClient.In(TimeSpan.FromSeconds(timeout + 30))).ResponseAsync;
    }

    /// <summary>CreateContainer is refused with <paramref name="code"/>, naming <paramref name="mentions"/>; no container, state, mount or process remains.</summary>
    private async Task AssertRefusedAsync(ContainerConfig config, StatusCode code, string mentions)
    {
        var before = Directory.Exists(ContainersDir) ? Directory.GetDirectories(ContainersDir).ToHashSet() : [];
        var snapshotsBefore = Snapshots();
        var error = await Assert.ThrowsAsync<RpcException>(() => Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = f.Pod, Config = config, SandboxConfig = f.PodConfig }, deadline: CriClient.In(Long)).ResponseAsync);
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(mentions, error.Message);
        var list = await Cri.Runtime.ListContainersAsync(new ListContainersRequest());
        Assert.DoesNotContain(list.Containers, c => c.Metadata.Name == config.Metadata.Name);
        var after = Directory.Exists(ContainersDir) ? Directory.GetDirectories(ContainersDir).ToHashSet() : [];
        after.ExceptWith(before);
        Assert.True(after.Count == 0, "container state left: " + string.Join(", ", after));
        var snapshots = Snapshots();
        snapshots.ExceptWith(snapshotsBefore);
        Assert.True(snapshots.Count == 0, "snapshot left: " + string.Join(", ", snapshots));
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(Path.Combine(f.Env.Hulld.State, "containers"), StringComparison.Ordinal))
            .ToList();
        var running = (await Cri.Runtime.ListContainersAsync(new ListContainersRequest())).Containers.Select(c => c.Id).ToHashSet();
        Assert.DoesNotContain(mounts, m => !running.Any(id => m.Contains(id, StringComparison.Ordinal)));
        // Re-creating with the same name works: the name was released.
        config.Linux = null;
        config.CDIDevices.Clear();
        config.Mounts.Clear();
        config.Command.Clear();
        config.Command.Add("/bin/true");
        var id = (await Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = f.Pod, Config = config, SandboxConfig = f.PodConfig }, deadline: CriClient.In(Long))).ContainerId;
        await RemoveAsync(id);
    }

    /// <summary>Every snapshot directory of every snapshotter.</summary>
    private HashSet<string> Snapshots()
    {
        var root = Path.Combine(f.Env.Hulld.Root, "snapshots");
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).SelectMany(s => Directory.GetDirectories(s).Concat(
                Directory.Exists(Path.Combine(s, "snapshots")) ? Directory.GetDirectories(Path.Combine(s, "snapshots")) : [])).ToHashSet()
            : [];
    }

    private string ContainersDir => Path.Combine(f.Env.Hulld.State, "containers");

    /// <summary>The container's cgroup directories on the host, from the cgroupsPath of its OCI spec (cgroupfs driver).</summary>
    private async Task<CgroupFiles> CgroupFilesAsync(string id)
    {
        using var info = JsonDocument.Parse((await StatusAsync(id, verbose: true)).Info["info"]);
        var path = info.RootElement.GetProperty("runtimeSpec").GetProperty("linux").GetProperty("cgroupsPath").GetString()!;
        return new CgroupFiles(path);
    }

    private sealed record CgroupFiles(string Path)
    {
        public static bool Unified => File.Exists("/sys/fs/cgroup/cgroup.controllers");

        public string Read(string controller, string v1File, string? v2File)
        {
            var file = Unified ? $"/sys/fs/cgroup{Path}/{v2File ?? v1File}" : $"/sys/fs/cgroup/{controller}{Path}/{v1File}";
            return File.ReadAllText(file).Trim();
        }

        /// <summary>"quota period", from cpu.max (v2) or cpu.cfs_quota_us and cpu.cfs_period_us (v1).</summary>
        public string CpuMax() => Unified ? Read("cpu", "cpu.max", null)
            : $"{Read("cpu", "cpu.cfs_quota_us", null)} {Read("cpu", "cpu.cfs_period_us", null)}";
    }
}
