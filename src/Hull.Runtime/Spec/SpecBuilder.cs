using Hull.Core;
using Hull.Runtime.Handlers;
using Hull.Runtime.Security;

namespace Hull.Runtime.Spec;

/// <summary>How a node's runtime builds specs (node-wide settings; per-handler ones are on <see cref="RuntimeHandler"/>).</summary>
public sealed record SpecBuilderOptions
{
    /// <summary>Clamp process.oomScoreAdj to hulld's own value (containerd's restrict_oom_score_adj); the host forces it where hulld may not lower it (<see cref="HostInfo.CanLowerOomScoreAdj"/>).</summary>
    public bool RestrictOomScoreAdj { get; init; }
    /// <summary>The seccomp profile of a container that names none. Unconfined, as in containerd; RuntimeDefault is the kubelet's SeccompDefault.</summary>
    public SecurityProfile DefaultSeccompProfile { get; init; } = SecurityProfile.Unconfined;
    public string AppArmorDefaultProfile { get; init; } = AppArmorProfiles.DefaultProfileName;
    public ImageVolumeMode ImageVolumes { get; init; } = ImageVolumeMode.Mkdir;
    /// <summary>Skip hugepage limits on a host without the hugetlb controller instead of failing.</summary>
    public bool TolerateMissingHugetlbController { get; init; }
    public string HostDevicesDirectory { get; init; } = "/dev";
    /// <summary>Never apply an AppArmor profile, even where the host has AppArmor (<c>disable_apparmor</c>).</summary>
    public bool DisableAppArmor { get; init; }
    /// <summary>Ignore the masked and read-only paths CRI asks for and keep the defaults (<c>disable_proc_mount</c>: no ProcMount Unmasked).</summary>
    public bool DisableProcMount { get; init; }
    /// <summary>Treat the host as having no hugetlb controller (<c>disable_hugetlb_controller</c>, containerd's default true).</summary>
    public bool DisableHugetlbController { get; init; }
    /// <summary>Device nodes are owned by the container's runAsUser/runAsGroup (<c>device_ownership_from_security_context</c>).</summary>
    public bool DeviceOwnershipFromSecurityContext { get; init; }
    public string MountInfoPath { get; init; } = "/proc/self/mountinfo";
}

/// <summary>
/// The one OCI spec builder: every process Hull asks a runtime to run gets its spec here — containers (from their domain
/// description, following containerd 2.0's CRI plugin: internal/cri/server/container_create*.go, internal/cri/opts,
/// pkg/oci), a pod's infra process (<see cref="BuildInfra"/>) and exec sessions (<see cref="ExecProcess"/>). Differences
/// from containerd are listed in the class docs of the parts that make them (<see cref="AppArmorProfiles"/>,
/// <see cref="ContainerMounts"/>, ...).
/// </summary>
public sealed partial class SpecBuilder(SpecBuilderOptions options, HostInfo host)
{
    public const string ContainerTypeAnnotation = "io.kubernetes.cri.container-type";
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";
    public const string ContainerNameAnnotation = "io.kubernetes.cri.container-name";
    public const string ImageNameAnnotation = "io.kubernetes.cri.image-name";
    public const string SandboxNameAnnotation = "io.kubernetes.cri.sandbox-name";
    public const string SandboxNamespaceAnnotation = "io.kubernetes.cri.sandbox-namespace";
    public const string SandboxUidAnnotation = "io.kubernetes.cri.sandbox-uid";

    /// <summary>containerd's default masked paths (pkg/oci populateDefaultUnixSpec).</summary>
    public static IReadOnlyList<string> DefaultMaskedPaths { get; } =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi",
    ];

    /// <summary>containerd's default read-only paths.</summary>
    public static IReadOnlyList<string> DefaultReadonlyPaths { get; } =
        ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    public SpecBuilderOptions Options { get; } = options;
    public HostInfo Host { get; } = host;

    public async Task<OciSpec> BuildAsync(ContainerSpecRequest request, CancellationToken cancellationToken = default)
    {
        var container = request.Container;
        var security = container.Security;
        var sandbox = request.Sandbox;
        if (!Path.IsPathRooted(request.RootfsPath))
            throw new HullException(ErrorKind.InvalidArgument, $"rootfs path \"{request.RootfsPath}\" of container \"{request.ContainerId}\" is not absolute");
        if (security.Privileged && !sandbox.Privileged)
            throw new HullException(ErrorKind.InvalidArgument, $"container \"{container.Name}\" is privileged, but its pod \"{sandbox.SandboxId}\" is not");

        // Who runs, with what.
        var user = await UserResolver.ResolveAsync(request.RootfsPath, request.ImageName, security, request.Image, cancellationToken).ConfigureAwait(false);
        var args = ProcessConfig.Args(container, request.Image);
        var env = ProcessConfig.Env(request.Image, container.Env, sandbox.Hostname, user.Home);
        string cwd = !string.IsNullOrEmpty(container.WorkingDir) ? container.WorkingDir
            : !string.IsNullOrEmpty(request.Image.WorkingDir) ? request.Image.WorkingDir : "/";

        // Capabilities: add/drop, then privileged replaces them with everything hulld has.
        var caps = security.Privileged
            ? Host.AllCapabilities
            : security.Capabilities is { } changes
                ? Capabilities.Compute(changes.Add, changes.Drop, Host.AllCapabilities)
                : Capabilities.Default;

        var seccomp = await SeccompProfiles.ResolveAsync(
            security.Seccomp ?? Options.DefaultSeccompProfile, security.Privileged, Host.SeccompEnabled, caps,
            Host.Kernel, Host.Architecture, cancellationToken).ConfigureAwait(false);
        string? apparmor = AppArmorProfiles.Resolve(security.AppArmor, security.Privileged,
            Options.DisableAppArmor ? AppArmorHost.Disabled : Host.AppArmor, Options.AppArmorDefaultProfile);

        var sysctls = Sysctls.Validate(sandbox.Sysctls,
            hostNetwork: sandbox.Network.Kind == NamespaceKind.Host,
            hostIpc: sandbox.Ipc.Kind == NamespaceKind.Host,
            hostUts: sandbox.Uts.Kind == NamespaceKind.Host);

        // Devices: the container's own, and every host device when privileged.
        var devices = new List<OciDevice>();
        var deviceRules = new List<OciDeviceCgroup> { new() { Allow = false, Access = "rwm" } };
        foreach (var d in container.Devices)
            foreach (var grant in Devices.ForContainerDevice(d))
            {
                devices.Add(Options.DeviceOwnershipFromSecurityContext ? OwnedByContainerUser(grant.Device, security) : grant.Device);
                deviceRules.Add(grant.Rule);
            }
        if (security.Privileged)
        {
            if (!request.Handler.PrivilegedWithoutHostDevices) devices.AddRange(Devices.HostDevices(Options.HostDevicesDirectory));
            if (!request.Handler.PrivilegedWithoutHostDevices || request.Handler.PrivilegedWithoutHostDevicesAllDevicesAllowed)
                deviceRules = [new() { Allow = true, Access = "rwm" }];
        }

        var mountPlan = ContainerMounts.Plan(request, Options, Host);
        var resources = ResourceMapper.Map(container.Resources, deviceRules,
            Options.DisableHugetlbController ? Host with { HugetlbControllerAvailable = false } : Host, Options.TolerateMissingHugetlbController);

        int? oomScoreAdj = null;
        if (container.Resources is { } r)
        {
            if (r.OomScoreAdj is < OomScoreAdjPolicy.Min or > OomScoreAdjPolicy.Max)
                throw new HullException(ErrorKind.InvalidArgument, $"oom_score_adj {r.OomScoreAdj} is out of range ({OomScoreAdjPolicy.Min} to {OomScoreAdjPolicy.Max})");
            oomScoreAdj = (int)r.OomScoreAdj;
            if (Host.RestrictsOomScoreAdj(Options)) oomScoreAdj = OomScoreAdjPolicy.Restrict(oomScoreAdj.Value, Host.OomScoreAdj);
        }

        var process = new OciProcess
        {
            Terminal = container.Tty,
            User = new OciUser { Uid = user.Uid, Gid = user.Gid, AdditionalGids = user.AdditionalGids.Count == 0 ? null : user.AdditionalGids },
            Args = args,
            Env = env,
            Cwd = cwd,
            Capabilities = new OciCapabilities { Bounding = caps, Effective = caps, Permitted = caps },
            NoNewPrivileges = security.NoNewPrivs,
            ApparmorProfile = apparmor,
            OomScoreAdj = oomScoreAdj,
        };

        var linux = new OciLinux
        {
            UidMappings = sandbox.UserNamespace is { UidMappings.Count: > 0 } un ? un.UidMappings : null,
            GidMappings = sandbox.UserNamespace is { GidMappings.Count: > 0 } gn ? gn.GidMappings : null,
            Sysctl = sysctls.Count == 0 ? null : sysctls,
            Resources = resources,
            CgroupsPath = CgroupsPath.For(request.Handler.CgroupDriver, sandbox.CgroupParent, sandbox.SandboxId, request.ContainerId),
            Namespaces = Namespaces(security, sandbox),
            Devices = devices.Count == 0 ? null : devices,
            Seccomp = seccomp,
            RootfsPropagation = mountPlan.RootfsPropagation,
            MaskedPaths = security.Privileged ? null : NullIfEmpty((Options.DisableProcMount ? null : security.MaskedPaths) ?? DefaultMaskedPaths),
            ReadonlyPaths = security.Privileged ? null : NullIfEmpty((Options.DisableProcMount ? null : security.ReadonlyPaths) ?? DefaultReadonlyPaths),
        };

        return new OciSpec
        {
            Process = process,
            Root = new OciRoot { Path = request.RootfsPath, Readonly = security.ReadonlyRootfs ? true : null },
            // Only a container with a UTS namespace of its own gets a hostname; joining the pod's keeps the pod's.
            Hostname = sandbox.Uts.Kind == NamespaceKind.New && !string.IsNullOrEmpty(sandbox.Hostname) ? sandbox.Hostname : null,
            Mounts = mountPlan.Mounts,
            Annotations = Annotations(request),
            Linux = linux,
        };
    }

    /// <summary>
    /// Applies an NRI adjustment to a built spec with the builder's own rules (<see cref="SpecAdjuster"/>): what a plugin
    /// adds is checked like what CRI asks for.
    /// </summary>
    public OciSpec Adjust(OciSpec spec, ContainerAdjustment adjustment, string containerName, SpecAdjuster.CdiInjector? injectCdi) =>
        SpecAdjuster.Apply(spec, adjustment, containerName, Host, injectCdi, Options.MountInfoPath);

    /// <summary>
    /// network, IPC and UTS: the pod's (joined by path; none for host); PID by the container's mode; a new mount
    /// namespace; a new cgroup namespace on a cgroup v2 host unless privileged; the pod's user namespace if it has one.
    /// </summary>
    public IReadOnlyList<OciNamespace> Namespaces(ContainerSecurity security, SandboxContext sandbox)
    {
        var list = new List<OciNamespace>();
        void Add(string type, NamespaceRef reference)
        {
            switch (reference.Kind)
            {
                case NamespaceKind.New: list.Add(new OciNamespace { Type = type }); break;
                case NamespaceKind.Path:
                    if (string.IsNullOrEmpty(reference.Path))
                        throw new HullException(ErrorKind.InvalidArgument, $"pod \"{sandbox.SandboxId}\" names a {type} namespace to join but no path");
                    list.Add(new OciNamespace { Type = type, Path = reference.Path });
                    break;
            }
        }

        NamespaceRef pid = security.PidMode switch
        {
            PidNamespaceMode.Container => NamespaceRef.New,
            PidNamespaceMode.Node => NamespaceRef.Host,
            PidNamespaceMode.Pod => sandbox.SharedPidNamespacePath is { Length: > 0 } p ? NamespaceRef.At(p)
                : throw new HullException(ErrorKind.FailedPrecondition, $"pod \"{sandbox.SandboxId}\" shares a PID namespace, but it has no infra process PID namespace to join"),
            PidNamespaceMode.Target => security.TargetPidNamespacePath is { Length: > 0 } t ? NamespaceRef.At(t)
                : throw new HullException(ErrorKind.InvalidArgument, "PID namespace mode Target needs the target's namespace path"),
            _ => throw new HullException(ErrorKind.InvalidArgument, $"unknown PID namespace mode {security.PidMode}"),
        };
        Add(OciNamespace.Pid, pid);
        Add(OciNamespace.Ipc, sandbox.Ipc);
        Add(OciNamespace.Uts, sandbox.Uts);
        list.Add(new OciNamespace { Type = OciNamespace.Mount });
        Add(OciNamespace.Network, sandbox.Network);
        if (sandbox.UserNamespace is { } userns)
            list.Add(new OciNamespace { Type = OciNamespace.User, Path = string.IsNullOrEmpty(userns.Path) ? null : userns.Path });
        if (Host.CgroupV2Unified && !security.Privileged)
            list.Add(new OciNamespace { Type = OciNamespace.Cgroup });
        return list;
    }

    private static IReadOnlyDictionary<string, string> Annotations(ContainerSpecRequest request)
    {
        // The pod's annotations that the handler lets through (containerd's pod_annotations), the container's own (all of
        // them, as CRI-O passes them; containerd needs an allow-list), then the CRI annotations, which none can override.
        var annotations = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in AnnotationPatterns.Select(request.Sandbox.PodAnnotations, request.Handler.PodAnnotations)) annotations[k] = v;
        foreach (var (k, v) in request.Container.Annotations) annotations[k] = v;
        annotations[ContainerTypeAnnotation] = "container";
        annotations[SandboxIdAnnotation] = request.Sandbox.SandboxId;
        annotations[ContainerNameAnnotation] = request.Container.Name;
        annotations[ImageNameAnnotation] = request.ImageName;
        annotations[SandboxNameAnnotation] = request.Sandbox.PodName;
        annotations[SandboxNamespaceAnnotation] = request.Sandbox.PodNamespace;
        annotations[SandboxUidAnnotation] = request.Sandbox.PodUid;
        return annotations;
    }

    private static IReadOnlyList<string>? NullIfEmpty(IReadOnlyList<string> list) => list.Count == 0 ? null : list;

    /// <summary>containerd's device_ownership_from_security_context: the node belongs to the user the container runs as (when it names one).</summary>
    private static OciDevice OwnedByContainerUser(OciDevice device, ContainerSecurity security) => device with
    {
        Uid = security.RunAsUser is { } uid ? (uint)uid : device.Uid,
        Gid = security.RunAsGroup is { } gid ? (uint)gid : device.Gid,
    };
}

/// <summary>linux.resources from CRI resources (containerd's customopts.WithResources).</summary>
public static class ResourceMapper
{
    public static OciResources Map(LinuxResources? resources, IReadOnlyList<OciDeviceCgroup> deviceRules, HostInfo host, bool tolerateMissingHugetlb)
    {
        if (resources is null) return new OciResources { Devices = deviceRules };
        OciCpu? cpu = null;
        if (resources.CpuPeriod != 0 || resources.CpuQuota != 0 || resources.CpuShares != 0 ||
            !string.IsNullOrEmpty(resources.CpusetCpus) || !string.IsNullOrEmpty(resources.CpusetMems))
        {
            if (resources.CpuPeriod < 0 || resources.CpuShares < 0)
                throw new HullException(ErrorKind.InvalidArgument, $"cpu period {resources.CpuPeriod} and shares {resources.CpuShares} must not be negative");
            cpu = new OciCpu
            {
                Period = resources.CpuPeriod != 0 ? (ulong)resources.CpuPeriod : null,
                Quota = resources.CpuQuota != 0 ? resources.CpuQuota : null,
                Shares = resources.CpuShares != 0 ? (ulong)resources.CpuShares : null,
                Cpus = string.IsNullOrEmpty(resources.CpusetCpus) ? null : resources.CpusetCpus,
                Mems = string.IsNullOrEmpty(resources.CpusetMems) ? null : resources.CpusetMems,
            };
        }

        OciMemory? memory = null;
        long limit = resources.MemoryLimitInBytes, swap = resources.MemorySwapLimitInBytes;
        if (limit < 0 || swap < -1)
            throw new HullException(ErrorKind.InvalidArgument, $"memory limit {limit} and memory+swap limit {swap} must not be negative");
        if (limit != 0 || swap != 0)
        {
            long? swapValue = null;
            if (host.SwapControllerAvailable)
            {
                // No swap unless asked for: memory+swap equal to the memory limit.
                if (limit != 0 && swap == 0) swapValue = limit;
                if (swap != 0) swapValue = swap;
            }
            memory = new OciMemory { Limit = limit != 0 ? limit : null, Swap = swapValue };
        }

        IReadOnlyList<OciHugepageLimit>? hugepages = null;
        if (resources.HugepageLimits.Count > 0)
        {
            if (host.HugetlbControllerAvailable)
                hugepages = resources.HugepageLimits.Select(h => new OciHugepageLimit(h.PageSize, h.Limit)).ToArray();
            else if (!tolerateMissingHugetlb)
                throw new HullException(ErrorKind.FailedPrecondition,
                    "hugepage limits are set, but this host has no hugetlb cgroup controller (set tolerate_missing_hugetlb_controller to ignore them)");
        }

        return new OciResources
        {
            Devices = deviceRules,
            Cpu = cpu,
            Memory = memory,
            HugepageLimits = hugepages,
            Unified = resources.Unified.Count == 0 ? null : new SortedDictionary<string, string>(resources.Unified.ToDictionary(), StringComparer.Ordinal),
        };
    }
}
