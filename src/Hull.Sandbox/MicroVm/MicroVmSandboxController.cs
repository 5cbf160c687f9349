using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Namespaces;
using Hull.Runtime.Handlers;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Controller;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.PodSandbox;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// The <c>microvm</c> sandboxer: each pod is a qemu microVM with its own kernel. Create pins the pod's network
/// namespace, runs CNI ADD as for runc pods, connects a TAP in that namespace to the CNI interface with tc mirred,
/// boots the VM (qemu runs inside the namespace to open the TAP) and has the guest agent take the interface's
/// addresses and routes; Start checks the agent answers. Containers run under runc in the guest
/// (<see cref="MicroVmTasks"/>). Stop powers the VM off and undoes the network; Shutdown also removes the pod's
/// directory. qemu outlives hulld; <see cref="RecoverAsync"/> reconnects to its agent. Each runtime handler has its
/// own VM settings and its own accelerator choice.
/// </summary>
public sealed class MicroVmSandboxController : ISandboxController
{
    public const string SandboxerName = "microvm";
    /// <summary>Below the state directory: one directory per microVM pod, and the KVM probes' (<see cref="ProbeDirectoryName"/>).</summary>
    public const string DirectoryName = "microvm";
    /// <summary>Not a valid sandbox id (ids start with a letter or digit), so the orphan sweep never takes it for a pod.</summary>
    private const string ProbeDirectoryName = ".probes";

    private readonly MicroVmSandboxOptions _options;
    private readonly RuntimeHandlers _handlers;
    private readonly NamespacePinner _pinner;
    private readonly CniManagers _cni;
    private readonly ILogger _logger;
    private readonly SandboxTable<Pod> _pods = new();
    private readonly ConcurrentDictionary<string, MicroVmLauncher> _launchers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _background = new();
    private Task _choosing = Task.CompletedTask;

    /// <param name="handlers">The runtime handlers (which one an empty name means; each handler's CNI settings).</param>
    /// <param name="cni">CNI per runtime handler.</param>
    public MicroVmSandboxController(MicroVmSandboxOptions options, RuntimeHandlers handlers, NamespacePinner pinner, CniManagers cni,
        ILogger<MicroVmSandboxController>? logger = null)
    {
        _options = options;
        _handlers = handlers;
        _pinner = pinner;
        _cni = cni;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public string Name => SandboxerName;

    /// <summary>The guest kernel supports both, but Hull does not set up user namespaces or recursive read-only binds in the guest.</summary>
    public RuntimeHandlerFeatures FeaturesFor(RuntimeHandler handler) => new();

    /// <summary>The accelerator the handler's VMs run under and why, and the VM's size.</summary>
    public IReadOnlyDictionary<string, string> Describe(RuntimeHandler handler)
    {
        var launcher = LauncherOf(handler.Name);
        var choice = launcher.Accelerators.Current;
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["accelerator"] = choice?.Name ?? "(not chosen yet)",
            ["accelerator_reason"] = choice?.Reason ?? "chosen when the first VM of this handler boots",
            ["memory_mib"] = launcher.Options.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            ["vcpus"] = launcher.Options.Vcpus.ToString(CultureInfo.InvariantCulture),
            ["kernel"] = launcher.Options.KernelPath,
        };
    }

    /// <summary>
    /// At start: each microvm handler decides between KVM and TCG in the background (a probe boot only where /dev/kvm
    /// looks usable), so <c>hullctl info</c> can say which before the first pod. A failure here only means the first
    /// pod decides.
    /// </summary>
    public void ChooseAcceleratorsInBackground()
    {
        var launchers = _options.Handlers.Keys.Select(LauncherOf).ToList();
        _choosing = Task.Run(async () =>
        {
            foreach (var launcher in launchers)
            {
                try
                {
                    await launcher.Accelerators.ChooseAsync(_background.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HullException or OperationCanceledException or IOException)
                {
                    _logger.LogDebug("microVM accelerator choice deferred to the first pod: {Error}", e.Message);
                }
            }
        }, CancellationToken.None);
    }

    /// <summary>The launcher of a handler's VMs (a handler that left the config gets the defaults: its VMs still run).</summary>
    private MicroVmLauncher LauncherOf(string handlerName) => _launchers.GetOrAdd(handlerName, name => new MicroVmLauncher(
        _options.Handlers.GetValueOrDefault(name) ?? new MicroVmOptions(), ProbeDirectory(name), _logger));

    /// <summary>The handler a pod's runtime_handler names ("" is the default one).</summary>
    private string HandlerNameOf(PodSandboxSpec spec) => _handlers.Find(spec.RuntimeHandler)?.Name ?? spec.RuntimeHandler;

    private CniManager CniOf(PodSandboxSpec spec) => _cni.For(_handlers.Find(spec.RuntimeHandler) ?? _handlers.Default);

    private string ProbeDirectory(string handlerName) => Path.Combine(_options.StateDirectory, DirectoryName, ProbeDirectoryName,
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(handlerName)))[..16]);

    /// <summary>What a restart needs to find the VM again, beside the persisted <see cref="SandboxInstance"/>.</summary>
    private sealed record VmRecord(string Accel, string TapMac, bool HasTap, string GuestKernel);

    private sealed class Pod(PodSandboxSpec spec, SandboxInstance instance, MicroVmLauncher launcher) : SandboxEntry(spec, instance)
    {
        public MicroVmLauncher Launcher { get; } = launcher;
        public MicroVmOptions Options => Launcher.Options;
        public MicroVm? Vm;
        public MicroVmTasks? Tasks;
        public VmRecord? Record;
        public bool Stopping;
    }

    /// <summary>The pod's own directory: <c>&lt;state&gt;/microvm/&lt;id&gt;/</c> (hostname, hosts, resolv.conf, vm/, share/).</summary>
    private string PodDirectory(string id) => Path.Combine(_options.StateDirectory, DirectoryName, id);
    private static string VmDirectory(string sandboxDirectory) => Path.Combine(sandboxDirectory, "vm");
    private static string ShareDirectory(string sandboxDirectory) => Path.Combine(sandboxDirectory, "share");
    private static string RecordPath(string sandboxDirectory) => Path.Combine(VmDirectory(sandboxDirectory), "vm.json");

    // ---------------------------------------------------------------- create / start

    public async Task<SandboxInstance> CreateAsync(PodSandboxSpec spec, CancellationToken cancellationToken)
    {
        string id = spec.Id;
        NamespacePinner.ValidateSandboxId(id);
        foreach (var (what, mode) in new[] { ("network", spec.NetworkMode), ("IPC", spec.IpcMode), ("PID", spec.PidMode) })
            if (mode == NamespaceMode.Node)
                throw new HullException(ErrorKind.InvalidArgument,
                    $"pod sandbox \"{id}\": a microVM pod cannot use the node's {what} namespace (it runs on its own kernel)");
        string dir = PodDirectory(id);
        var pod = new Pod(spec, new SandboxInstance
        {
            Id = id, CreatedAt = DateTimeOffset.UtcNow, Sandboxer = Name, Directory = dir, CgroupParent = spec.CgroupParent,
            // The guest's own namespaces are the pod's: containers join them (GuestSpec drops host paths), and a pod that
            // shares a PID namespace shares the guest's.
            PidNsPath = spec.PidMode == NamespaceMode.Pod ? GuestPaths.SharedPidNamespace : "",
            ShmPath = GuestPaths.ShmDirectory,
        }, LauncherOf(HandlerNameOf(spec)));
        _pods.Add(pod);
        try
        {
            Directory.CreateDirectory(dir);
            var pins = await _pinner.PinAsync(new NamespacePinRequest(id) { Namespaces = NamespaceTypes.Network }, cancellationToken)
                .ConfigureAwait(false);
            pod.Instance = pod.Instance with { NetNsPath = pins.NetworkPath ?? "" };
            var network = await CniOf(spec).SetupAsync(PodSandboxController.NetworkRequest(spec, pod.Instance.NetNsPath), cancellationToken)
                .ConfigureAwait(false);
            pod.Instance = pod.Instance with { Ips = network.PodIps, NetworkAttached = true };

            string hostname = PodSandboxController.HostnameOf(spec);
            PodSandboxFiles.WriteHostname(dir, hostname);
            PodSandboxFiles.WriteHosts(dir, hostname, pod.Instance.Ips, null);
            PodSandboxFiles.WriteResolvConf(dir, spec.Dns, _options.HostResolvConf);
            pod.Instance = pod.Instance with
            {
                HostnamePath = PodSandboxFiles.HostnamePath(dir),
                HostsPath = PodSandboxFiles.HostsPath(dir),
                ResolvConfPath = PodSandboxFiles.ResolvConfPath(dir),
            };

            var guestNetwork = await MicroVmNetwork.ConnectAsync(pod.Instance.NetNsPath, id, cancellationToken).ConfigureAwait(false);
            var share = new MicroVmShare(ShareDirectory(dir));
            share.Create();
            var (vm, ping) = await pod.Launcher.BootAsync(VmName(id), VmDirectory(dir), share.Root, guestNetwork.Tap, pod.Instance.NetNsPath,
                cancellationToken).ConfigureAwait(false);
            pod.Vm = vm;
            pod.Record = new VmRecord(vm.Launch.Accel, guestNetwork.Tap.Mac, true, ping.KernelRelease);
            WriteRecord(dir, pod.Record);
            await SetUpGuestAsync(pod, hostname, guestNetwork, cancellationToken).ConfigureAwait(false);
            pod.Tasks = new MicroVmTasks(id, vm, share, Path.Combine(VmDirectory(dir), "containers"), pod.Options.AgentCallTimeout, _logger);
            Watch(pod);
            _logger.LogInformation("microVM pod {Id} ({Name}): created, IPs {Ips}, guest kernel {Kernel} under {Accel}", id,
                spec.Identity.ReservationKey, string.Join(", ", pod.Instance.Ips), ping.KernelRelease, vm.Launch.Accel);
            return pod.Instance;
        }
        catch (Exception e)
        {
            _logger.LogWarning("microVM pod {Id}: create failed, undoing: {Error}", id, e.Message);
            try
            {
                await TearDownAsync(pod, removeAll: true, CancellationToken.None).ConfigureAwait(false);
                _pods.Remove(id);
            }
            catch (Exception undo)
            {
                _logger.LogError("microVM pod {Id}: undoing a failed create failed: {Error}", id, undo.Message);
                throw new HullException(e is HullException h ? h.Kind : ErrorKind.Internal,
                    $"pod sandbox \"{id}\": {e.Message}; cleaning up also failed: {undo.Message}", e);
            }
            if (e is HullException or OperationCanceledException) throw;
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{id}\": cannot create the microVM: {e.Message}", e);
        }
    }

    private async Task SetUpGuestAsync(Pod pod, string hostname, GuestNetwork network, CancellationToken cancellationToken)
    {
        var request = new SetupSandboxRequest { Hostname = hostname, ShmSizeBytes = (ulong)pod.Options.ShmSizeBytes };
        var nic = new Interface { Mac = network.Tap.Mac, Name = network.HostInterface, Mtu = (uint)network.Mtu };
        nic.Addresses.AddRange(network.Addresses);
        request.Interfaces.Add(nic);
        request.Routes.AddRange(network.Routes.Select(r => new Route { Destination = r.Destination, Gateway = r.Gateway, Device = r.Device }));
        foreach (var (key, value) in pod.Spec.Sysctls) request.Sysctls[key] = value;
        await pod.Vm!.Agent.CallAsync($"pod sandbox \"{pod.Spec.Id}\": setting up the guest",
            (c, d, ct) => c.SetupSandboxAsync(request, deadline: d, cancellationToken: ct), pod.Options.AgentCallTimeout, cancellationToken).ConfigureAwait(false);
    }

    public async Task<SandboxInstance> StartAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        return await SandboxTable<Pod>.LockedAsync(pod, async () =>
        {
            var vm = pod.Vm ?? throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{sandboxId}\" has no microVM");
            await vm.Agent.CallAsync($"pod sandbox \"{sandboxId}\": ping", (c, d, ct) => c.PingAsync(new PingRequest(), deadline: d, cancellationToken: ct),
                pod.Options.AgentCallTimeout, cancellationToken).ConfigureAwait(false);
            pod.Instance = pod.Instance with { State = SandboxState.Ready };
            return pod.Instance;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<SandboxPlatform> PlatformAsync(string sandboxId, CancellationToken cancellationToken)
    {
        Get(sandboxId);
        return Task.FromResult(new SandboxPlatform("linux", "amd64"));
    }

    /// <summary>When qemu exits by itself (a crash, a guest panic), the pod is not ready and its containers have exited.</summary>
    private void Watch(Pod pod)
    {
        var vm = pod.Vm!;
        _ = vm.Exited.ContinueWith(_ =>
        {
            if (pod.Stopping || pod.Vm != vm || !vm.HasExited) return;
            var why = $"the microVM of pod \"{pod.Spec.Id}\" exited unexpectedly; console: {vm.ConsoleTail()}";
            _logger.LogError("{Why}", why);
            pod.Tasks?.VmExited(why);
            MarkExited(pod, 255);
        }, TaskScheduler.Default);
    }

    private static void MarkExited(Pod pod, int code)
    {
        pod.ExitedAt ??= DateTimeOffset.UtcNow;
        pod.Instance = pod.Instance with { State = SandboxState.NotReady };
        pod.Exit.TrySetResult(new SandboxExit(code, pod.ExitedAt.Value));
    }

    // ---------------------------------------------------------------- stop / shutdown

    public Task StopAsync(string sandboxId, TimeSpan timeout, CancellationToken cancellationToken) =>
        _pods.StopAsync(sandboxId, pod => TearDownAsync(pod, removeAll: false, cancellationToken), cancellationToken);

    public Task ShutdownAsync(string sandboxId, CancellationToken cancellationToken) =>
        _pods.ShutdownAsync(sandboxId, pod => TearDownAsync(pod, removeAll: true, cancellationToken), cancellationToken);

    /// <summary>
    /// Undoes the pod in reverse: the VM (powered off, killed if it does not), the share's binds, the TAP and
    /// redirects, CNI DEL, the namespace pin; with <paramref name="removeAll"/> also the pod's directory. Each step is
    /// idempotent and runs even when an earlier one failed; the first failure is thrown at the end.
    /// </summary>
    private async Task TearDownAsync(Pod pod, bool removeAll, CancellationToken cancellationToken)
    {
        string id = pod.Spec.Id;
        string dir = PodDirectory(id);
        var errors = new List<Exception>();
        async Task Step(string what, Func<Task> step)
        {
            try
            {
                await step().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning("microVM pod {Id}: {What} failed: {Error}", id, what, e.Message);
                errors.Add(e);
            }
        }

        pod.Stopping = true;
        if (pod.Tasks is { } tasks) await Step("stopping the container pumps", async () => await tasks.DisposeAsync().ConfigureAwait(false)).ConfigureAwait(false);
        // A VM this process never reattached to (a restart found its qemu but not its agent) is still killed.
        pod.Vm ??= MicroVm.Reattach(pod.Launcher.LaunchFor(VmName(id), VmDirectory(dir), ShareDirectory(dir), null, "tcg"), _logger);
        if (pod.Vm is { } vm)
            await Step("powering the microVM off", async () =>
            {
                await vm.PowerOffAsync(pod.Options.PowerOffTimeout).ConfigureAwait(false);
                await vm.DisposeAsync().ConfigureAwait(false);
                pod.Vm = null;
            }).ConfigureAwait(false);
        pod.Tasks?.VmExited($"pod sandbox \"{id}\" was stopped");
        if (pod.Vm is null && removeAll)
            await Step("unsharing the containers' paths", () =>
            {
                pod.Tasks?.ForgetAll();
                new MicroVmShare(ShareDirectory(dir)).RemoveAll();
                return Task.CompletedTask;
            }).ConfigureAwait(false);

        bool networkDone = true;
        var netns = pod.Instance.NetNsPath.Length > 0 ? pod.Instance.NetNsPath : _pinner.PathOf(id, NamespaceTypes.Network);
        if (pod.Vm is null)
            await Step("removing the TAP device", () => MicroVmNetwork.DisconnectAsync(netns, id, cancellationToken)).ConfigureAwait(false);
        if (pod.Instance.NetworkAttached || removeAll)
        {
            int before = errors.Count;
            await Step("CNI DEL", async () =>
            {
                await CniOf(pod.Spec).TeardownAsync(PodSandboxController.NetworkRequest(pod.Spec, netns), cancellationToken).ConfigureAwait(false);
                pod.Instance = pod.Instance with { NetworkAttached = false };
            }).ConfigureAwait(false);
            networkDone = errors.Count == before;
        }
        if (networkDone)
            await Step("removing the namespace pins", () =>
            {
                _pinner.Remove(id);
                return Task.CompletedTask;
            }).ConfigureAwait(false);
        if (removeAll && errors.Count == 0)
            await Step("removing the sandbox directory", () =>
            {
                // Never through a bind that is still mounted: that would delete a container's files.
                if (MountInfo.PointsBelow(dir) is { Count: > 0 } mounted)
                    throw new HullException(ErrorKind.Internal, $"{dir} still has mounts: {string.Join(", ", mounted)}");
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                return Task.CompletedTask;
            }).ConfigureAwait(false);

        MarkExited(pod, 0);
        if (errors.Count > 0)
            throw new HullException(errors[0] is HullException h ? h.Kind : ErrorKind.Internal,
                $"pod sandbox \"{id}\": {(removeAll ? "remove" : "stop")} failed: {string.Join("; ", errors.Select(e => e.Message))}", errors[0]);
    }

    public Task<SandboxExit> WaitAsync(string sandboxId, CancellationToken cancellationToken) =>
        Get(sandboxId).Exit.Task.WaitAsync(cancellationToken);

    // ---------------------------------------------------------------- status, metrics, update

    public Task<SandboxStatus> StatusAsync(string sandboxId, bool verbose, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        var instance = pod.Instance;
        var info = new Dictionary<string, string>(StringComparer.Ordinal);
        if (verbose)
        {
            var vm = pod.Vm;
            info["info"] = new JsonObject
            {
                ["sandboxID"] = pod.Spec.Id,
                ["sandboxer"] = Name,
                ["runtimeHandler"] = pod.Spec.RuntimeHandler,
                ["pid"] = vm?.Pid ?? 0,
                ["accel"] = pod.Record?.Accel ?? "",
                ["guestKernel"] = pod.Record?.GuestKernel ?? "",
                ["consoleLog"] = vm?.Launch.ConsoleLog ?? "",
                ["namespaces"] = new JsonObject { ["network"] = instance.NetNsPath },
                ["sandboxDirectory"] = instance.Directory,
                ["config"] = JsonSerializer.SerializeToNode(pod.Spec, SandboxJson.Options),
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        }
        return Task.FromResult(new SandboxStatus(instance, pod.ExitedAt, info));
    }

    /// <summary>The VM as the host sees it: qemu's CPU time and resident memory, and the pod's interfaces on the host side.</summary>
    public async Task<SandboxMetrics> MetricsAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        ulong cpu = 0, rss = 0;
        if (pod.Vm is { HasExited: false } vm) (cpu, rss) = QemuUsage(vm.Pid);
        IReadOnlyList<InterfaceMetrics> interfaces = [];
        if (pod.Instance.NetNsPath.Length > 0 && LinuxNamespaces.IsNamespace(pod.Instance.NetNsPath))
            interfaces = await NamespaceRunner.RunInAsync(pod.Instance.NetNsPath, NamespaceTypes.Network,
                () => PodSandboxController.ParseNetDev(File.ReadAllText("/proc/thread-self/net/dev"))
                    .Where(i => i.Name != MicroVmNetwork.TapName).ToList()).ConfigureAwait(false);
        return new SandboxMetrics(DateTimeOffset.UtcNow, cpu, rss, interfaces);
    }

    /// <summary>utime + stime (clock ticks, 100 Hz) from /proc/&lt;pid&gt;/stat and VmRSS from /proc/&lt;pid&gt;/status.</summary>
    internal static (ulong CpuNanos, ulong RssBytes) QemuUsage(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            ulong ticks = ulong.Parse(fields[11], CultureInfo.InvariantCulture) + ulong.Parse(fields[12], CultureInfo.InvariantCulture);
            var rssLine = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            ulong rssKb = rssLine is null ? 0 : ulong.Parse(rssLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            return (ticks * 10_000_000, rssKb * 1024);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return (0, 0);
        }
    }

    /// <summary>The VM's size is fixed at boot; the containers' own limits apply inside it (UpdateContainerResources).</summary>
    public Task UpdateAsync(string sandboxId, SandboxResources resources, CancellationToken cancellationToken)
    {
        Get(sandboxId);
        return Task.CompletedTask;
    }

    // ---------------------------------------------------------------- recovery, tasks

    public async Task<SandboxInstance> RecoverAsync(PodSandboxSpec spec, SandboxInstance persisted, DateTimeOffset? exitedAt,
        CancellationToken cancellationToken)
    {
        var pod = new Pod(spec, persisted, LauncherOf(HandlerNameOf(spec)));
        _pods.Recovered(pod);
        if (exitedAt is { } exited)
        {
            pod.ExitedAt = exited; // status keeps reporting the time the store recorded
            pod.Exit.TrySetResult(new SandboxExit(0, exited));
        }
        string dir = PodDirectory(spec.Id);
        pod.Record = ReadRecord(dir);
        var launch = pod.Launcher.LaunchFor(VmName(spec.Id), VmDirectory(dir), ShareDirectory(dir),
            pod.Record is { HasTap: true } r ? new TapDevice(MicroVmNetwork.TapName, r.TapMac) : null, pod.Record?.Accel ?? "tcg");
        pod.Vm = MicroVm.Reattach(launch, _logger);
        if (persisted.State != SandboxState.Ready) return persisted;
        string? lost = null;
        if (pod.Vm is null) lost = "its qemu is not running";
        else
        {
            try
            {
                await pod.Vm.ConnectAsync(TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
                pod.Tasks = new MicroVmTasks(spec.Id, pod.Vm, new MicroVmShare(ShareDirectory(dir)), Path.Combine(VmDirectory(dir), "containers"),
                    pod.Options.AgentCallTimeout, _logger);
                await pod.Tasks.RecoverAllAsync(cancellationToken).ConfigureAwait(false);
                Watch(pod);
                _logger.LogInformation("microVM pod {Id}: reconnected to its agent (qemu pid {Pid})", spec.Id, pod.Vm.Pid);
            }
            catch (HullException e)
            {
                lost = $"its agent does not answer: {e.Message}";
            }
        }
        if (lost is not null)
        {
            _logger.LogWarning("microVM pod {Id}: not ready after restart: {Reason}", spec.Id, lost);
            MarkExited(pod, 255);
        }
        return pod.Instance;
    }

    /// <summary>
    /// At start, after recovery: removes every pod directory under <c>&lt;state&gt;/microvm/</c> whose pod the store does
    /// not know (a crash between booting and persisting): its qemu is killed, the share's binds unmounted, the
    /// namespace pin (and with it the TAP) removed, then the directory. A directory that still has mounts is left.
    /// The podsandbox sweep never looks here, so the two sweeps may run in either order.
    /// </summary>
    public async Task<IReadOnlyList<string>> SweepOrphansAsync(IReadOnlySet<string> known, CancellationToken cancellationToken)
    {
        var swept = new List<string>();
        var pods = Path.Combine(_options.StateDirectory, DirectoryName);
        if (!Directory.Exists(pods)) return swept;
        foreach (var dir in Directory.EnumerateDirectories(pods))
        {
            var id = Path.GetFileName(dir);
            if (known.Contains(id) || _pods.Contains(id) || !NamespacePinner.IsValidId(id)) continue;
            // Any launcher finds a VM again: reattaching reads only the pod's own files.
            if (MicroVm.Reattach(LauncherOf("").LaunchFor(VmName(id), VmDirectory(dir), ShareDirectory(dir), null, "tcg"), _logger) is { } vm)
            {
                _logger.LogWarning("killing the microVM of pod sandbox {Id}, which the store does not know (left by a crash?)", id);
                vm.Kill();
                await vm.Exited.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                await vm.DisposeAsync().ConfigureAwait(false);
            }
            try
            {
                new MicroVmShare(ShareDirectory(dir)).RemoveAll();
                _pinner.Remove(id);
                if (MountInfo.PointsBelow(dir).Count > 0)
                {
                    _logger.LogError("orphaned microVM pod directory {Dir} still has mounts; leaving it", dir);
                    continue;
                }
                Directory.Delete(dir, recursive: true);
                _logger.LogWarning("removed the directory of microVM pod sandbox {Id}, which the store does not know (left by a crash?)", id);
                swept.Add(id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Linux.SyscallException or HullException)
            {
                _logger.LogError("cannot remove orphaned microVM pod {Id}: {Error}", id, e.Message);
            }
        }
        return swept;
    }

    /// <summary>At daemon shutdown: stops the accelerator probes and closes the agent connections and pumps; the VMs keep running.</summary>
    public async Task ReleaseUnusedAsync(CancellationToken cancellationToken)
    {
        await _background.CancelAsync().ConfigureAwait(false);
        await _choosing.ConfigureAwait(false);
        foreach (var pod in _pods.Values)
        {
            if (pod.Tasks is { } tasks) await tasks.DisposeAsync().ConfigureAwait(false);
            if (pod.Vm is { } vm) await vm.DisconnectAsync().ConfigureAwait(false);
        }
    }

    public ITaskService Tasks(string sandboxId) =>
        Get(sandboxId).Tasks ?? throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{sandboxId}\": its microVM is not running");

    /// <summary>
    /// Port-forward: a connection to 127.0.0.1:<paramref name="port"/> inside the guest, through the agent (the pod's
    /// services listen in the VM, not in the host's network namespace).
    /// </summary>
    public async Task<PodConnection> ConnectAsync(string sandboxId, int port, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        var agent = (pod.Vm ?? throw new HullException(ErrorKind.FailedPrecondition, $"pod sandbox \"{sandboxId}\": its microVM is not running")).Agent;
        var opened = await agent.CallAsync($"pod sandbox \"{sandboxId}\": port-forward to {port}",
            (c, d, ct) => c.PortForwardAsync(new PortForwardRequest { Port = (uint)port }, deadline: d, cancellationToken: ct),
            pod.Options.AgentCallTimeout, cancellationToken).ConfigureAwait(false);
        var stream = new AgentStream(agent, opened.StreamId, readable: true, writable: true, pod.Options.AgentCallTimeout);
        return new PodConnection(stream, () => new ValueTask(stream.CloseGuestSideAsync()));
    }

    private Pod Get(string sandboxId) => _pods.Get(sandboxId);

    // ---------------------------------------------------------------- pieces

    private static string VmName(string id) => $"hull-{id[..Math.Min(12, id.Length)]}";

    private static void WriteRecord(string dir, VmRecord record)
    {
        Linux.AtomicFile.WriteText(RecordPath(dir), JsonSerializer.Serialize(record));
    }

    private static VmRecord? ReadRecord(string dir)
    {
        try
        {
            return JsonSerializer.Deserialize<VmRecord>(File.ReadAllText(RecordPath(dir)));
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }
}
