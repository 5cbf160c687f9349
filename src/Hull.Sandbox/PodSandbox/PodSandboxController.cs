using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Linux.Namespaces;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Controller;
using Hull.Sandbox.Namespaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.PodSandbox;

/// <summary>How the <c>podsandbox</c> sandboxer works on this node.</summary>
public sealed record PodSandboxOptions
{
    public required string StateDirectory { get; init; }
    public long ShmSizeBytes { get; init; } = PodSandboxFiles.DefaultShmSize;
    public string HostResolvConf { get; init; } = "/etc/resolv.conf";
    public string HostHosts { get; init; } = "/etc/hosts";
    /// <summary>The infra process of a pod that shares its PID namespace (statically linked; bind-mounted into an empty rootfs).</summary>
    public string InfraBinary { get; init; } = "/usr/bin/catatonit";
    /// <summary>
    /// Hull's helper that starts the infra process without runc or conmon (cmd/hull-infra; hulld ships it next to itself).
    /// "" runs it as a runc container under conmon, as a pod with a sandbox image or a systemd-driver handler always does.
    /// </summary>
    public string InfraHelper { get; init; } = "";
    /// <summary>
    /// <c>pinned_images.sandbox</c>: when set, the infra process (still only for a pod that shares its PID namespace) is
    /// this image's entrypoint + cmd on a read-only snapshot of it, instead of catatonit. Needs an <see cref="IInfraImageProvider"/>.
    /// </summary>
    public string SandboxImage { get; init; } = "";
    public TimeSpan CgroupRemoveTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Pods with their own network may bind ports below 1024 (<c>enable_unprivileged_ports</c>), unless they set the sysctl.</summary>
    public bool EnableUnprivilegedPorts { get; init; }
    /// <summary>Pods with their own network may send ICMP echo without privileges (<c>enable_unprivileged_icmp</c>), unless they set the sysctl.</summary>
    public bool EnableUnprivilegedIcmp { get; init; }
    /// <summary>Hull's <c>root</c>: user namespaces are offered only where idmapped overlays work on the file system of its snapshots.</summary>
    public string RootDirectory { get; init; } = "/var/lib/hull";
}

/// <summary>
/// The <c>podsandbox</c> sandboxer: a pod is a set of pinned namespaces (network, IPC, UTS), a CNI attachment, a few
/// files, a /dev/shm tmpfs and a cgroup; an infra process (<c>catatonit -P</c> under runc) exists only when the pod
/// shares a PID namespace. Containers run through the local conmon + runc task manager.
/// </summary>
public sealed partial class PodSandboxController : ISandboxController
{
    public const string SandboxerName = "podsandbox";
    /// <summary>The pod cgroup's parent when the kubelet gives none (cgroupfs): /hull/&lt;id&gt;, as <see cref="Runtime.Spec.CgroupsPath"/> places containers.</summary>
    private const string DefaultCgroupRoot = Runtime.Spec.CgroupsPath.CgroupfsRoot;
    private static readonly TimeSpan InfraStopTimeout = TimeSpan.FromSeconds(10);

    private readonly PodSandboxOptions _options;
    private readonly RuntimeHandlers _handlers;
    private readonly NamespacePinner _pinner;
    private readonly CniManagers _cni;
    private readonly TaskManagers _tasks;
    private readonly SpecBuilder _specs;
    private readonly IInfraImageProvider? _infraImages;
    private readonly ILogger _logger;
    private readonly SandboxTable<Pod> _pods = new();
    private readonly Lazy<string?> _userNamespaceProblem;

    /// <param name="cni">CNI per runtime handler (handlers may have their own conf dir).</param>
    /// <param name="tasks">Task managers per runtime handler (its OCI runtime binary, root and cgroup driver).</param>
    /// <param name="specs">The spec builder, for the infra process.</param>
    public PodSandboxController(PodSandboxOptions options, RuntimeHandlers handlers, NamespacePinner pinner, CniManagers cni,
        TaskManagers tasks, SpecBuilder specs, ILogger<PodSandboxController>? logger = null, IInfraImageProvider? infraImages = null)
    {
        _options = options;
        _handlers = handlers;
        _infraImages = infraImages;
        _pinner = pinner;
        _cni = cni;
        _tasks = tasks;
        _specs = specs;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _userNamespaceProblem = new Lazy<string?>(ProbeUserNamespaces);
        if (options.InfraHelper.Length == 0)
            _logger.LogInformation("shared-PID pods: the infra process runs under runc and conmon (no hull-infra next to hulld)");
    }

    public string Name => SandboxerName;

    /// <summary>
    /// What every handler's pods can do here, found once by trying: user namespaces where an idmapped overlay mounts on
    /// the file system of the snapshots (the rootfs is one; volumes are idmapped binds), recursive read-only mounts where
    /// the kernel has mount_setattr (Hull makes those binds itself, so runc 1.1 does too).
    /// </summary>
    public RuntimeHandlerFeatures FeaturesFor(RuntimeHandler handler) =>
        new(UserNamespaces: _userNamespaceProblem.Value is null, RecursiveReadOnlyMounts: ContainerMounts.RecursiveReadOnlySupported(_specs.Host));

    private string? ProbeUserNamespaces()
    {
        string? directory = Path.Combine(_options.RootDirectory, "snapshots");
        while (directory is not null && !Directory.Exists(directory)) directory = Path.GetDirectoryName(directory);
        string? problem = directory is null ? "no directory to try idmapped mounts in" : Linux.OverlayCheck.Try(directory, idMapped: true);
        if (problem is null) _logger.LogInformation("user namespaces: idmapped overlays work under {Directory}", directory);
        else _logger.LogWarning("user namespaces are not offered: idmapped overlays do not work under {Directory}: {Problem}", directory, problem);
        return problem;
    }

    /// <summary>Nothing beyond the handler's own settings.</summary>
    public IReadOnlyDictionary<string, string> Describe(RuntimeHandler handler) => new Dictionary<string, string>();

    private sealed class Pod(PodSandboxSpec spec, SandboxInstance instance) : SandboxEntry(spec, instance);

    // ---------------------------------------------------------------- create

    public async Task<SandboxInstance> CreateAsync(PodSandboxSpec spec, CancellationToken cancellationToken)
    {
        using var activity = SandboxTelemetry.Source.StartActivity("podsandbox create");
        string id = spec.Id;
        NamespacePinner.ValidateSandboxId(id);
        ValidateUserNamespace(spec);
        string dir = PodSandboxFiles.SandboxDirectory(_options.StateDirectory, id);
        var pod = new Pod(spec, new SandboxInstance { Id = id, CreatedAt = DateTimeOffset.UtcNow, Sandboxer = Name, Directory = dir });
        _pods.Add(pod);
        try
        {
            // Owner only: the pod's /dev/shm (mode 1777 inside) and the infra bundle live here; containers get them by bind mount.
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string hostname = HostnameOf(spec);

            // The pod cgroup (cgroupfs). With systemd the kubelet's slice is the pod cgroup: Hull makes none, checks that
            // the parent is a slice, and runc puts the infra process and containers in "<slice>:hull:<id>" scopes.
            if (!Systemd(spec))
            {
                var (parent, created) = EnsureCgroup(spec, dir);
                pod.Instance = pod.Instance with { CgroupParent = parent, CgroupCreated = created };
            }
            else
            {
                if (spec.CgroupParent.Trim().Length > 0) SystemdSlice.Parse(spec.CgroupParent, id);
                pod.Instance = pod.Instance with { CgroupParent = spec.CgroupParent.Trim() };
            }

            // Namespaces: host network means host UTS too (containerd's rule); host IPC means no IPC namespace.
            var kinds = NamespaceTypes.None;
            if (spec.NetworkMode != NamespaceMode.Node) kinds |= NamespaceTypes.Network | NamespaceTypes.Uts;
            if (spec.IpcMode != NamespaceMode.Node) kinds |= NamespaceTypes.Ipc;
            if (kinds == NamespaceTypes.None && spec.Sysctls.Count > 0)
                throw new HullException(ErrorKind.InvalidArgument,
                    $"pod sandbox \"{id}\": sysctls {string.Join(", ", spec.Sysctls.Keys)} need a pod network or IPC namespace, but the pod uses the node's");
            // A pod with its own user namespace gets it pinned too, and its other namespaces are created inside it.
            if (kinds != NamespaceTypes.None || spec.UserNamespace.IsPod)
            {
                var pins = await _pinner.PinAsync(new NamespacePinRequest(id)
                {
                    Namespaces = kinds,
                    Hostname = kinds.HasFlag(NamespaceTypes.Uts) ? hostname : null,
                    Sysctls = PodSysctls(spec),
                    UserNamespace = spec.UserNamespace.IsPod ? Mappings(spec.UserNamespace) : null,
                }, cancellationToken).ConfigureAwait(false);
                pod.Instance = pod.Instance with
                {
                    NetNsPath = pins.NetworkPath ?? "",
                    IpcNsPath = pins.IpcPath ?? "",
                    UtsNsPath = pins.UtsPath ?? "",
                    UserNsPath = pins.UserPath ?? "",
                };
            }

            // CNI ADD (it undoes itself when it fails).
            if (spec.NetworkMode != NamespaceMode.Node)
            {
                var network = await CniOf(spec).SetupAsync(NetworkRequest(spec, pod.Instance.NetNsPath), cancellationToken)
                    .ConfigureAwait(false);
                pod.Instance = pod.Instance with { Ips = network.PodIps, NetworkAttached = true };
            }

            PodSandboxFiles.WriteHostname(dir, hostname);
            PodSandboxFiles.WriteHosts(dir, hostname, pod.Instance.Ips, spec.NetworkMode == NamespaceMode.Node ? _options.HostHosts : null);
            PodSandboxFiles.WriteResolvConf(dir, spec.Dns, _options.HostResolvConf);
            pod.Instance = pod.Instance with
            {
                HostnamePath = PodSandboxFiles.HostnamePath(dir),
                HostsPath = PodSandboxFiles.HostsPath(dir),
                ResolvConfPath = PodSandboxFiles.ResolvConfPath(dir),
            };
            if (spec.IpcMode == NamespaceMode.Node) pod.Instance = pod.Instance with { ShmPath = "/dev/shm" };
            else
            {
                PodSandboxFiles.MountShm(dir, _options.ShmSizeBytes);
                pod.Instance = pod.Instance with { ShmPath = PodSandboxFiles.ShmPath(dir), ShmMounted = true };
            }
            // Named before they exist (the infra task takes the pod's id), so that the row the caller persists now lets an undo
            // after a crash inside StartAsync stop the infra process and release its snapshot; both steps tolerate absence.
            // A direct infra process needs no name: hull-infra's pid file in the sandbox directory names it from its first moment.
            if (spec.PidMode == NamespaceMode.Pod && !StartsInfraDirectly(spec))
                pod.Instance = pod.Instance with { InfraTaskId = id, InfraImage = _options.SandboxImage };
            _logger.LogInformation("pod sandbox {Id} ({Name}): created, IPs {Ips}", id, spec.Identity.ReservationKey, string.Join(", ", pod.Instance.Ips));
            return pod.Instance;
        }
        catch (Exception e)
        {
            _logger.LogWarning("pod sandbox {Id}: create failed, undoing: {Error}", id, e.Message);
            try
            {
                await TearDownAsync(pod, removeAll: true, CancellationToken.None, undoingCreate: true).ConfigureAwait(false);
                _pods.Remove(id);
            }
            catch (Exception undo)
            {
                _logger.LogError("pod sandbox {Id}: undoing a failed create failed: {Error}", id, undo.Message);
                if (e is HullException h) throw new HullException(h.Kind, $"{h.Message}; cleaning up also failed: {undo.Message}", h);
                throw new HullException(ErrorKind.Internal, $"pod sandbox \"{id}\": {e.Message}; cleaning up also failed: {undo.Message}", e);
            }
            if (e is HullException or OperationCanceledException) throw;
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{id}\": cannot create: {e.Message}", e);
        }
    }

    public async Task<SandboxInstance> StartAsync(string sandboxId, CancellationToken cancellationToken)
    {
        using var activity = SandboxTelemetry.Source.StartActivity("podsandbox start");
        var pod = Get(sandboxId);
        return await SandboxTable<Pod>.LockedAsync(pod, async () =>
        {
            if (pod.Spec.PidMode == NamespaceMode.Pod && pod.Instance.InfraPid == 0)
            {
                if (StartsInfraDirectly(pod.Spec))
                {
                    var process = await StartDirectInfraAsync(pod).ConfigureAwait(false);
                    pod.Instance = pod.Instance with { InfraPid = process.Pid, InfraStartTime = process.StartTime, PidNsPath = $"/proc/{process.Pid}/ns/pid" };
                }
                else
                {
                    var (taskId, pid, pidNs) = await StartInfraAsync(pod, cancellationToken).ConfigureAwait(false);
                    pod.Instance = pod.Instance with { InfraTaskId = taskId, InfraPid = pid, PidNsPath = pidNs };
                }
            }
            pod.Instance = pod.Instance with { State = SandboxState.Ready };
            return pod.Instance;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<SandboxPlatform> PlatformAsync(string sandboxId, CancellationToken cancellationToken)
    {
        Get(sandboxId);
        string arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "arm",
            Architecture.S390x => "s390x",
            Architecture.Ppc64le => "ppc64le",
            var other => other.ToString().ToLowerInvariant(),
        };
        return Task.FromResult(new SandboxPlatform("linux", arch));
    }

    // ---------------------------------------------------------------- stop / shutdown

    public Task StopAsync(string sandboxId, TimeSpan timeout, CancellationToken cancellationToken) =>
        _pods.StopAsync(sandboxId, pod => TearDownAsync(pod, removeAll: false, cancellationToken), cancellationToken);

    public Task ShutdownAsync(string sandboxId, CancellationToken cancellationToken) =>
        _pods.ShutdownAsync(sandboxId, pod => TearDownAsync(pod, removeAll: true, cancellationToken), cancellationToken);

    /// <summary>
    /// Undoes the pod in reverse: infra process, CNI DEL, namespace pins, shm; with <paramref name="removeAll"/> also the
    /// cgroup and the directory. Every step is idempotent and runs even when an earlier one failed; the first failure
    /// is thrown at the end. The pins are kept while CNI DEL has not succeeded, so a retry can run it again.
    /// </summary>
    /// <param name="undoingCreate">Undoing this process's own failed create: a failed CNI ADD has already been undone by
    /// the CNI manager, and a DEL failure (a plugin that never ran ADD, say) does not keep the namespaces, as in containerd.</param>
    private async Task TearDownAsync(Pod pod, bool removeAll, CancellationToken cancellationToken, bool undoingCreate = false)
    {
        string id = pod.Spec.Id;
        var errors = new List<Exception>();
        async Task Step(string what, Func<Task> step)
        {
            try
            {
                await step().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning("pod sandbox {Id}: {What} failed: {Error}", id, what, e.Message);
                errors.Add(e);
            }
        }

        if (pod.Instance.InfraTaskId is { Length: > 0 } infra)
            await Step("stopping the infra process", async () =>
            {
                var tasks = TasksOf(pod.Spec);
                try
                {
                    await tasks.StopAsync(infra, InfraStopTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }
                try
                {
                    await tasks.DeleteAsync(infra, cancellationToken).ConfigureAwait(false);
                }
                catch (HullException e) when (e.Kind == ErrorKind.NotFound) { }
                pod.Instance = pod.Instance with { InfraTaskId = "", InfraPid = 0, PidNsPath = "" };
            }).ConfigureAwait(false);

        if (pod.Instance.InfraTaskId.Length == 0 && pod.Spec.PidMode == NamespaceMode.Pod)
            await Step("stopping the infra process", async () =>
            {
                await StopDirectInfraAsync(pod, cancellationToken).ConfigureAwait(false);
                pod.Instance = pod.Instance with { InfraPid = 0, InfraStartTime = 0, PidNsPath = "" };
            }).ConfigureAwait(false);

        // The pause image's snapshot goes once its process is gone (or never started).
        if (pod.Instance.InfraImage.Length > 0 && pod.Instance.InfraTaskId.Length == 0)
            await Step("releasing the infra image snapshot", () => ReleaseInfraImageAsync(pod, cancellationToken)).ConfigureAwait(false);

        bool networkDone = true;
        // At removal, a pod whose network is not known to be attached still gets a DEL while its network pin is there
        // (a crash during ADD can leave IPs allocated): pins go only after a DEL succeeded, so a stopped pod needs none,
        // which spares its removal the CNI plugins' runs.
        bool maybeAttached = removeAll && !undoingCreate && _pinner.IsPinned(id, NamespaceTypes.Network);
        if (pod.Spec.NetworkMode != NamespaceMode.Node && (pod.Instance.NetworkAttached || maybeAttached))
        {
            int before = errors.Count;
            await Step("CNI DEL", async () =>
            {
                string netns = pod.Instance.NetNsPath.Length > 0 ? pod.Instance.NetNsPath : _pinner.PathOf(id, NamespaceTypes.Network);
                // A pin that is no longer a namespace (a crash between creating the pin file and mounting the namespace
                // on it, or between unmounting and deleting it) is torn down with an empty CNI_NETNS, as the CNI spec
                // allows and containerd does: the plugins still release the IPs and host rules; the interfaces are gone.
                if (!LinuxNamespaces.IsNamespace(netns)) netns = "";
                await CniOf(pod.Spec).TeardownAsync(NetworkRequest(pod.Spec, netns), cancellationToken).ConfigureAwait(false);
                pod.Instance = pod.Instance with { NetworkAttached = false };
            }).ConfigureAwait(false);
            networkDone = errors.Count == before;
            if (!networkDone && undoingCreate)
            {
                errors.RemoveRange(before, errors.Count - before); // logged above
                networkDone = true;
            }
        }

        if (networkDone)
            await Step("removing the namespace pins", () =>
            {
                _pinner.Remove(id);
                return Task.CompletedTask;
            }).ConfigureAwait(false);

        string dir = PodSandboxFiles.SandboxDirectory(_options.StateDirectory, id);
        await Step("unmounting /dev/shm", () =>
        {
            PodSandboxFiles.UnmountShm(dir);
            pod.Instance = pod.Instance with { ShmMounted = false };
            return Task.CompletedTask;
        }).ConfigureAwait(false);

        if (removeAll)
        {
            var cgroup = pod.Instance.CgroupCreated ? pod.Instance.CgroupParent
                : PodSandboxFiles.ReadCgroupMarker(dir) ?? (pod.Spec.CgroupParent.Length == 0 && !Systemd(pod.Spec) ? $"{DefaultCgroupRoot}/{id}" : null);
            if (cgroup is not null)
                await Step("removing the pod cgroup", async () =>
                {
                    await CgroupTree.RemoveAsync(CgroupPaths.ForCgroupsPath(cgroup, CgroupLayout.Detect()), _options.CgroupRemoveTimeout, cancellationToken)
                        .ConfigureAwait(false);
                    pod.Instance = pod.Instance with { CgroupCreated = false };
                }).ConfigureAwait(false);
            if (errors.Count == 0)
                await Step("removing the sandbox directory", () =>
                {
                    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                    return Task.CompletedTask;
                }).ConfigureAwait(false);
        }

        if (pod.Instance.State != SandboxState.NotReady || pod.ExitedAt is null)
        {
            pod.ExitedAt ??= DateTimeOffset.UtcNow;
            pod.Instance = pod.Instance with { State = SandboxState.NotReady };
            pod.Exit.TrySetResult(new SandboxExit(0, pod.ExitedAt.Value));
        }

        if (errors.Count > 0)
        {
            var first = errors[0];
            string message = $"pod sandbox \"{id}\": {(removeAll ? "remove" : "stop")} failed: {string.Join("; ", errors.Select(e => e.Message))}";
            throw new HullException(first is HullException h ? h.Kind : ErrorKind.Internal, message, first);
        }
    }

    public Task<SandboxExit> WaitAsync(string sandboxId, CancellationToken cancellationToken) =>
        Get(sandboxId).Exit.Task.WaitAsync(cancellationToken);

    // ---------------------------------------------------------------- status, metrics, update

    public Task<SandboxStatus> StatusAsync(string sandboxId, bool verbose, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        var instance = pod.Instance;
        var info = new Dictionary<string, string>(StringComparer.Ordinal);
        if (verbose) info["info"] = VerboseInfo(pod, instance);
        return Task.FromResult(new SandboxStatus(instance, pod.ExitedAt, info));
    }

    private string VerboseInfo(Pod pod, SandboxInstance instance)
    {
        var cni = instance.NetworkAttached && pod.Spec.NetworkMode != NamespaceMode.Node
            ? CniOf(pod.Spec).GetCachedStatus(pod.Spec.Id) : null;
        var info = new JsonObject
        {
            ["sandboxID"] = pod.Spec.Id,
            ["sandboxer"] = Name,
            ["runtimeHandler"] = pod.Spec.RuntimeHandler,
            ["pid"] = instance.InfraPid,
            ["infraImage"] = instance.InfraImage,
            ["netNamespaceClosed"] = instance.NetNsPath.Length > 0 && !LinuxNamespaces.IsNamespace(instance.NetNsPath),
            ["namespaces"] = new JsonObject
            {
                ["network"] = instance.NetNsPath,
                ["ipc"] = instance.IpcNsPath,
                ["uts"] = instance.UtsNsPath,
                ["pid"] = instance.PidNsPath,
                ["user"] = instance.UserNsPath,
            },
            ["cgroupParent"] = instance.CgroupParent,
            ["sandboxDirectory"] = instance.Directory,
            ["files"] = new JsonObject
            {
                ["hostname"] = instance.HostnamePath,
                ["hosts"] = instance.HostsPath,
                ["resolvConf"] = instance.ResolvConfPath,
                ["shm"] = instance.ShmPath,
            },
            ["cniResult"] = cni is null ? null : new JsonArray(cni.Attachments.Select(a => (JsonNode)new JsonObject
            {
                ["network"] = a.NetworkName,
                ["interface"] = a.InterfaceName,
                ["result"] = a.Result.Raw.DeepClone(),
            }).ToArray()),
            ["config"] = JsonSerializer.SerializeToNode(pod.Spec, SandboxJson.Options),
        };
        return info.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public async Task<SandboxMetrics> MetricsAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        var instance = pod.Instance;
        ulong cpu = 0, workingSet = 0;
        var at = DateTimeOffset.UtcNow;
        if (instance.CgroupParent.Length > 0)
        {
            try
            {
                // systemd: the kubelet's slice, where systemd put it in the tree.
                string path = Systemd(pod.Spec) ? SystemdSlice.Expand(SystemdSlice.Parse(instance.CgroupParent, sandboxId)) : instance.CgroupParent;
                var stats = CgroupStatsReader.Read(CgroupPaths.ForCgroupsPath(path, CgroupLayout.Detect()));
                (cpu, workingSet, at) = (stats.CpuUsageNanoseconds, stats.MemoryWorkingSetBytes, stats.Timestamp);
            }
            catch (HullException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.InvalidArgument) { }
            catch (ArgumentException) { }
        }
        IReadOnlyList<InterfaceMetrics> interfaces = [];
        if (instance.NetNsPath.Length > 0 && LinuxNamespaces.IsNamespace(instance.NetNsPath))
            interfaces = await NamespaceRunner.RunInAsync(instance.NetNsPath, NamespaceTypes.Network,
                () => ParseNetDev(File.ReadAllText("/proc/thread-self/net/dev"))).ConfigureAwait(false);
        return new SandboxMetrics(at, cpu, workingSet, interfaces);
    }

    /// <summary>/proc/net/dev: "iface: rx_bytes rx_packets rx_errs … (8 rx fields) tx_bytes tx_packets tx_errs …"; lo is left out.</summary>
    internal static IReadOnlyList<InterfaceMetrics> ParseNetDev(string text)
    {
        var result = new List<InterfaceMetrics>();
        foreach (var line in text.Split('\n').Skip(2))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string name = line[..colon].Trim();
            if (name == "lo") continue;
            var f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 11) continue;
            ulong P(int i) => ulong.Parse(f[i], CultureInfo.InvariantCulture);
            result.Add(new InterfaceMetrics(name, P(0), P(2), P(8), P(10)));
        }
        return result;
    }

    /// <summary>
    /// Writes the pod's new limits into its cgroup (cgroupfs driver; v1 files, or v2's cpu.weight/cpu.max/memory.max).
    /// With the systemd driver the pod's slice belongs to systemd and the kubelet, so nothing is written.
    /// </summary>
    public Task UpdateAsync(string sandboxId, SandboxResources resources, CancellationToken cancellationToken)
    {
        var pod = Get(sandboxId);
        if (Systemd(pod.Spec) || pod.Instance.CgroupParent.Length == 0) return Task.CompletedTask;
        var layout = CgroupLayout.Detect();
        if (layout.Mode == CgroupMode.None) return Task.CompletedTask;
        try
        {
            var skipped = PodCgroupResources.Apply(CgroupPaths.ForCgroupsPath(pod.Instance.CgroupParent, layout), layout, resources);
            foreach (var file in skipped)
                _logger.LogWarning("pod sandbox {Id}: cannot set {File}: the pod cgroup has no such file (controller not enabled?)", sandboxId, file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{sandboxId}\": cannot update the pod cgroup: {e.Message}", e);
        }
        return Task.CompletedTask;
    }

    // ---------------------------------------------------------------- recovery, tasks

    public async Task<SandboxInstance> RecoverAsync(PodSandboxSpec spec, SandboxInstance persisted, DateTimeOffset? exitedAt,
        CancellationToken cancellationToken)
    {
        var pod = new Pod(spec, persisted);
        _pods.Recovered(pod);
        if (exitedAt is { } exited)
        {
            pod.ExitedAt = exited; // status keeps reporting the time the store recorded
            pod.Exit.TrySetResult(new SandboxExit(0, exited));
        }
        if (persisted.State != SandboxState.Ready) return persisted;
        string? lost = null;
        if (persisted.NetNsPath.Length > 0 && !LinuxNamespaces.IsNamespace(persisted.NetNsPath))
            lost = $"its network namespace {persisted.NetNsPath} is gone";
        else if (persisted.InfraStartTime > 0)
        {
            if (!new InfraProcessId(persisted.InfraPid, persisted.InfraStartTime).IsRunning) lost = $"its infra process {persisted.InfraPid} is gone";
        }
        else if (persisted.InfraTaskId.Length > 0)
        {
            try
            {
                var recovered = await TasksOf(spec).RecoverAsync(persisted.InfraTaskId, cancellationToken).ConfigureAwait(false);
                if (recovered.Status != RuntimeStatus.Running) lost = $"its infra process is {recovered.Status.ToString().ToLowerInvariant()}";
            }
            catch (HullException e)
            {
                lost = $"its infra process cannot be found: {e.Message}";
            }
        }
        if (lost is not null)
        {
            _logger.LogWarning("pod sandbox {Id}: not ready after restart: {Reason}", spec.Id, lost);
            pod.ExitedAt = DateTimeOffset.UtcNow;
            pod.Instance = persisted with { State = SandboxState.NotReady };
            pod.Exit.TrySetResult(new SandboxExit(255, pod.ExitedAt.Value));
        }
        return pod.Instance;
    }

    /// <summary>At daemon shutdown: releases node-wide mounts no pod uses any more (pods themselves keep running).</summary>
    public Task ReleaseUnusedAsync(CancellationToken cancellationToken)
    {
        try
        {
            _pinner.ReleaseIfUnused();
        }
        catch (Exception e) when (e is IOException or Linux.SyscallException)
        {
            _logger.LogWarning("cannot release the namespace directory: {Error}", e.Message);
        }
        return Task.CompletedTask;
    }

    public ITaskService Tasks(string sandboxId) => TasksOf(Get(sandboxId).Spec);

    /// <summary>The pod's runtime handler; a pod whose handler left the config after it was made keeps running under the default one.</summary>
    private RuntimeHandler HandlerOf(PodSandboxSpec spec) => _handlers.Find(spec.RuntimeHandler) ?? _handlers.Default;

    private CniManager CniOf(PodSandboxSpec spec) => _cni.For(HandlerOf(spec));

    private TaskManager TasksOf(PodSandboxSpec spec) => _tasks.For(HandlerOf(spec));

    /// <summary>Whether the pod's runtime handler uses the systemd cgroup driver.</summary>
    private bool Systemd(PodSandboxSpec spec) => HandlerOf(spec).CgroupDriver == CgroupDriver.Systemd;

    private Pod Get(string sandboxId) => _pods.Get(sandboxId);

    // ---------------------------------------------------------------- pieces

    /// <summary>The pod's sysctls plus containerd's unprivileged-ports and -ICMP defaults for a pod with its own network.</summary>
    private IReadOnlyDictionary<string, string> PodSysctls(PodSandboxSpec spec)
    {
        if (spec.NetworkMode == NamespaceMode.Node || !(_options.EnableUnprivilegedPorts || _options.EnableUnprivilegedIcmp)) return spec.Sysctls;
        var sysctls = new Dictionary<string, string>(spec.Sysctls, StringComparer.Ordinal);
        if (_options.EnableUnprivilegedPorts) sysctls.TryAdd(UnprivilegedPortStart, "0");
        if (_options.EnableUnprivilegedIcmp) sysctls.TryAdd(PingGroupRange, "0 2147483647");
        return sysctls;
    }

    /// <summary>
    /// The pod's user namespace options are valid (<see cref="UserNamespaceOptions.Validate"/>), and a pod with its own user
    /// namespace shares neither the node's PID nor its IPC namespace (which its root could not mount /proc or mqueue
    /// for; Kubernetes refuses such pods too). InvalidArgument otherwise, before anything is made.
    /// </summary>
    private static void ValidateUserNamespace(PodSandboxSpec spec)
    {
        string owner = $"pod sandbox \"{spec.Id}\"";
        spec.UserNamespace.Validate(owner);
        if (!spec.UserNamespace.IsPod) return;
        if (spec.PidMode == NamespaceMode.Node || spec.IpcMode == NamespaceMode.Node)
            throw new HullException(ErrorKind.InvalidArgument,
                $"{owner}: a pod with its own user namespace cannot share the node's {(spec.PidMode == NamespaceMode.Node ? "PID" : "IPC")} namespace");
    }

    private static UserNamespaceMappings Mappings(UserNamespaceOptions options) => new(
        options.Uids.Select(m => new Linux.Namespaces.IdMapping(m.ContainerId, m.HostId, m.Size)).ToList(),
        options.Gids.Select(m => new Linux.Namespaces.IdMapping(m.ContainerId, m.HostId, m.Size)).ToList());

    private const string UnprivilegedPortStart = "net.ipv4.ip_unprivileged_port_start";
    private const string PingGroupRange = "net.ipv4.ping_group_range";

    internal static string HostnameOf(PodSandboxSpec spec)
    {
        if (spec.NetworkMode == NamespaceMode.Node) return Environment.MachineName;
        string name = spec.Hostname.Length > 0 ? spec.Hostname : spec.Identity.Name;
        return name.Length > 63 ? name[..63] : name;
    }

    internal static PodNetworkRequest NetworkRequest(PodSandboxSpec spec, string netns) => new(spec.Id, netns)
    {
        PodName = spec.Identity.Name,
        PodNamespace = spec.Identity.Namespace,
        PodUid = spec.Identity.Uid,
        PortMappings = spec.PortMappings.Where(p => p.HostPort > 0)
            .Select(p => new CniPortMapping(p.HostPort, p.ContainerPort, p.Protocol.ToLowerInvariant(), p.HostIp)).ToList(),
        Dns = spec.Dns is { } d ? new CniDnsCapability(d.Servers, d.Searches, d.Options) : null,
        CgroupPath = spec.CgroupParent.Length > 0 ? spec.CgroupParent : null,
        Annotations = spec.Annotations,
    };

    /// <summary>Creates the pod cgroup (cgroupfs) in every hierarchy where it is missing; returns it and whether Hull made it.</summary>
    private static (string Path, bool Created) EnsureCgroup(PodSandboxSpec spec, string sandboxDirectory)
    {
        string parent = spec.CgroupParent.Trim();
        if (parent.EndsWith(".slice", StringComparison.Ordinal))
            throw new HullException(ErrorKind.InvalidArgument,
                $"cgroup parent \"{spec.CgroupParent}\" is a systemd slice, but the cgroup driver is cgroupfs (the kubelet's cgroupDriver must match Hull's)");
        string path = parent.Length == 0 ? $"{DefaultCgroupRoot}/{spec.Id}" : "/" + parent.Trim('/');
        var layout = CgroupLayout.Detect();
        if (layout.Mode == CgroupMode.None) return (path, false);
        CgroupPaths paths;
        try
        {
            paths = CgroupPaths.ForCgroupsPath(path, layout);
        }
        catch (ArgumentException e)
        {
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{spec.Id}\": {e.Message}", e);
        }
        bool created = false;
        foreach (var dir in paths.Directories)
        {
            if (Directory.Exists(dir)) continue;
            try
            {
                if (!created) PodSandboxFiles.WriteCgroupMarker(sandboxDirectory, path);
                Directory.CreateDirectory(dir);
                created = true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HullException(ErrorKind.Internal, $"pod sandbox \"{spec.Id}\": cannot create cgroup \"{dir}\": {e.Message}", e);
            }
        }
        return (path, created);
    }
}
