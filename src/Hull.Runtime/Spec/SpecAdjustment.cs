using Hull.Linux;
using Hull.Core;
using Hull.Runtime.Security;

namespace Hull.Runtime.Spec;

/// <summary>
/// Changes to a container's spec decided outside the CRI config (NRI plugins' merged ContainerAdjustment), in OCI
/// terms. Removals are listed apart from additions; an entry both removed and added is replaced.
/// </summary>
public sealed record ContainerAdjustment
{
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> RemovedAnnotations { get; init; } = [];
    /// <summary>Mounts to add; one at a destination already mounted replaces it.</summary>
    public IReadOnlyList<OciMount> Mounts { get; init; } = [];
    /// <summary>Destinations whose mounts are removed.</summary>
    public IReadOnlyList<string> RemovedMounts { get; init; } = [];
    /// <summary>Environment variables to set (replacing a variable of the same name in place).</summary>
    public IReadOnlyList<EnvVar> Env { get; init; } = [];
    public IReadOnlyList<string> RemovedEnv { get; init; } = [];
    /// <summary>Replaces the process arguments when set.</summary>
    public IReadOnlyList<string>? Args { get; init; }
    /// <summary>Hooks appended to the spec's.</summary>
    public OciHooks? Hooks { get; init; }
    /// <summary>Device nodes to add (each also gets its device cgroup rule); one at a path already present replaces it.</summary>
    public IReadOnlyList<OciDevice> Devices { get; init; } = [];
    public IReadOnlyList<string> RemovedDevices { get; init; } = [];
    /// <summary>Fully qualified CDI device names, resolved by the CDI injector given to <see cref="SpecAdjuster.Apply"/>.</summary>
    public IReadOnlyList<string> CdiDevices { get; init; } = [];
    public ResourceAdjustment? Resources { get; init; }
    public string? CgroupsPath { get; init; }
    public int? OomScoreAdj { get; init; }
    /// <summary>Replaces the seccomp policy.</summary>
    public OciSeccomp? Seccomp { get; init; }
    /// <summary>Namespaces to add, or to replace the one of the same type.</summary>
    public IReadOnlyList<OciNamespace> Namespaces { get; init; } = [];
    /// <summary>Namespace types to remove (the container then shares the host's).</summary>
    public IReadOnlyList<string> RemovedNamespaces { get; init; } = [];
    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> RemovedSysctls { get; init; } = [];
    /// <summary>POSIX rlimits; one replaces a limit of the same type.</summary>
    public IReadOnlyList<OciRlimit> Rlimits { get; init; } = [];
}

/// <summary>Resource settings of an adjustment; null fields are left as they are.</summary>
public sealed record ResourceAdjustment
{
    public long? MemoryLimit { get; init; }
    public long? MemoryReservation { get; init; }
    public long? MemorySwap { get; init; }
    public ulong? MemorySwappiness { get; init; }
    public bool? DisableOomKiller { get; init; }
    public ulong? CpuShares { get; init; }
    public long? CpuQuota { get; init; }
    public ulong? CpuPeriod { get; init; }
    public long? CpuRealtimeRuntime { get; init; }
    public ulong? CpuRealtimePeriod { get; init; }
    public string? CpusetCpus { get; init; }
    public string? CpusetMems { get; init; }
    public long? PidsLimit { get; init; }
    public IReadOnlyList<OciHugepageLimit> HugepageLimits { get; init; } = [];
    public IReadOnlyDictionary<string, string> Unified { get; init; } = new Dictionary<string, string>();
    /// <summary>Device cgroup rules appended to the spec's.</summary>
    public IReadOnlyList<OciDeviceCgroup> DeviceRules { get; init; } = [];
}

/// <summary>
/// Applies a <see cref="ContainerAdjustment"/> to a built spec the way containerd does (containerd/nri's
/// runtime-tools/generate Adjust), checked by the spec builder's own rules: a device gets its cgroup rule
/// (<see cref="Devices.Grant"/>), sysctls must be namespaced and the pod must own the namespace
/// (<see cref="Sysctls.Validate"/>), oom_score_adj must be in range, mount propagation needs a shared or slave
/// source, hugepage limits need the hugetlb controller. A violation is an InvalidArgument or FailedPrecondition
/// error naming the container and the value.
/// </summary>
public static class SpecAdjuster
{
    /// <summary>Resolves CDI device names into the spec (the CDI resolver); null when CDI is not available.</summary>
    public delegate OciSpec CdiInjector(OciSpec spec, IReadOnlyList<string> devices);

    public static OciSpec Apply(OciSpec spec, ContainerAdjustment adjustment, string containerName, HostInfo host,
        CdiInjector? injectCdi = null, string mountInfoPath = "/proc/self/mountinfo")
    {
        // CDI edits first: the rest of the adjustment applies on top of what the CDI devices bring.
        if (adjustment.CdiDevices.Count > 0)
        {
            if (injectCdi is null)
                throw new HullException(ErrorKind.FailedPrecondition, $"container \"{containerName}\": CDI devices {string.Join(", ", adjustment.CdiDevices)} were requested, but CDI is not available");
            spec = injectCdi(spec, adjustment.CdiDevices);
        }
        var process = spec.Process ?? new OciProcess();
        var linux = spec.Linux ?? new OciLinux();

        // Annotations.
        var annotations = new SortedDictionary<string, string>(spec.Annotations?.ToDictionary() ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var key in adjustment.RemovedAnnotations) annotations.Remove(key);
        foreach (var (k, v) in adjustment.Annotations) annotations[k] = v;

        // Environment: replaced in place, removed, or appended.
        var env = AdjustEnv(process.Env ?? [], adjustment);
        var args = adjustment.Args is { Count: > 0 } a ? a : process.Args;

        var hooks = AppendHooks(spec.Hooks, adjustment.Hooks);

        // Devices: each added node gets its cgroup rule, as a CRI device does.
        var devices = (linux.Devices ?? []).ToList();
        var resources = linux.Resources ?? new OciResources();
        var deviceRules = (resources.Devices ?? []).ToList();
        foreach (var path in adjustment.RemovedDevices) devices.RemoveAll(d => d.Path == path);
        foreach (var device in adjustment.Devices)
        {
            if (!device.Path.StartsWith('/'))
                throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerName}\": adjusted device path \"{device.Path}\" is not absolute");
            if (device.Type is not ("c" or "b" or "u" or "p"))
                throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerName}\": adjusted device \"{device.Path}\" has invalid type \"{device.Type}\"");
            devices.RemoveAll(d => d.Path == device.Path);
            var grant = Devices.Grant(device, DeviceAccess(device));
            devices.Add(grant.Device);
            deviceRules.Add(grant.Rule);
        }

        int? oomScoreAdj = process.OomScoreAdj;
        if (adjustment.OomScoreAdj is { } oom)
        {
            if (oom is < OomScoreAdjPolicy.Min or > OomScoreAdjPolicy.Max)
                throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerName}\": adjusted oom_score_adj {oom} is out of range ({OomScoreAdjPolicy.Min} to {OomScoreAdjPolicy.Max})");
            oomScoreAdj = oom;
        }

        // Namespaces: replace by type, or remove.
        var namespaces = (linux.Namespaces ?? []).ToList();
        foreach (var type in adjustment.RemovedNamespaces) namespaces.RemoveAll(n => n.Type == type);
        foreach (var ns in adjustment.Namespaces)
        {
            int at = namespaces.FindIndex(n => n.Type == ns.Type);
            if (at >= 0) namespaces[at] = ns;
            else namespaces.Add(ns);
        }

        // Sysctls: the same rules as a pod's, against the namespaces the container ends up with.
        var sysctls = new SortedDictionary<string, string>(linux.Sysctl?.ToDictionary() ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var key in adjustment.RemovedSysctls) sysctls.Remove(Sysctls.Normalize(key));
        if (adjustment.Sysctls.Count > 0)
        {
            bool Host(string type) => namespaces.All(n => n.Type != type);
            foreach (var (k, v) in Sysctls.Validate(adjustment.Sysctls, Host(OciNamespace.Network), Host(OciNamespace.Ipc), Host(OciNamespace.Uts)))
                sysctls[k] = v;
        }

        resources = AdjustResources(resources with { Devices = deviceRules }, adjustment.Resources, containerName, host);

        var (mounts, rootPropagation) = AdjustMounts(spec.Mounts ?? [], linux.RootfsPropagation, adjustment, containerName, mountInfoPath);

        var rlimits = (process.Rlimits ?? []).ToList();
        foreach (var limit in adjustment.Rlimits)
        {
            rlimits.RemoveAll(l => l.Type == limit.Type);
            rlimits.Add(limit);
        }

        return spec with
        {
            Annotations = annotations,
            Hooks = hooks,
            Mounts = mounts,
            Process = process with
            {
                Env = env,
                Args = args,
                OomScoreAdj = oomScoreAdj,
                Rlimits = rlimits.Count == 0 ? null : rlimits,
            },
            Linux = linux with
            {
                Devices = devices.Count == 0 ? null : devices,
                Resources = resources,
                CgroupsPath = string.IsNullOrEmpty(adjustment.CgroupsPath) ? linux.CgroupsPath : adjustment.CgroupsPath,
                Seccomp = adjustment.Seccomp ?? linux.Seccomp,
                Namespaces = namespaces,
                Sysctl = sysctls.Count == 0 ? null : sysctls,
                RootfsPropagation = rootPropagation,
            },
        };
    }

    /// <summary>containerd/nri's LinuxDevice.AccessString: read and write, plus mknod for block devices.</summary>
    private static string DeviceAccess(OciDevice device) => device.Type == "b" ? "rwm" : "rw";

    private static List<string> AdjustEnv(IReadOnlyList<string> current, ContainerAdjustment adjustment)
    {
        var set = adjustment.Env.GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
        var removed = adjustment.RemovedEnv.ToHashSet(StringComparer.Ordinal);
        var result = new List<string>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in current)
        {
            int eq = entry.IndexOf('=');
            string key = eq < 0 ? entry : entry[..eq];
            if (set.TryGetValue(key, out var value))
            {
                if (done.Add(key)) result.Add($"{key}={value}");
                continue;
            }
            if (!removed.Contains(key)) result.Add(entry);
        }
        foreach (var e in adjustment.Env)
            if (done.Add(e.Key)) result.Add($"{e.Key}={set[e.Key]}");
        return result;
    }

    private static OciHooks? AppendHooks(OciHooks? current, OciHooks? added)
    {
        if (added is null) return current;
        current ??= new OciHooks();
        static IReadOnlyList<OciHook>? Join(IReadOnlyList<OciHook>? a, IReadOnlyList<OciHook>? b) =>
            b is null or { Count: 0 } ? a : [.. a ?? [], .. b];
        return new OciHooks
        {
            Prestart = Join(current.Prestart, added.Prestart),
            CreateRuntime = Join(current.CreateRuntime, added.CreateRuntime),
            CreateContainer = Join(current.CreateContainer, added.CreateContainer),
            StartContainer = Join(current.StartContainer, added.StartContainer),
            Poststart = Join(current.Poststart, added.Poststart),
            Poststop = Join(current.Poststop, added.Poststop),
        };
    }

    private static OciResources AdjustResources(OciResources resources, ResourceAdjustment? r, string containerName, HostInfo host)
    {
        if (r is null) return resources;
        var memory = resources.Memory ?? new OciMemory();
        if (r.MemoryLimit is { } limit and not 0)
        {
            if (limit < 0) throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerName}\": adjusted memory limit {limit} is negative");
            // As containerd: the limit also caps memory+swap (no swap), where swap is accounted.
            memory = memory with { Limit = limit, Swap = host.SwapControllerAvailable ? limit : memory.Swap };
        }
        if (r.MemorySwap is { } swap && host.SwapControllerAvailable) memory = memory with { Swap = swap };
        if (r.MemoryReservation is { } reservation) memory = memory with { Reservation = reservation };
        if (r.MemorySwappiness is { } swappiness) memory = memory with { Swappiness = swappiness };
        if (r.DisableOomKiller is { } disable) memory = memory with { DisableOomKiller = disable };

        var cpu = resources.Cpu ?? new OciCpu();
        cpu = cpu with
        {
            Shares = r.CpuShares ?? cpu.Shares,
            Quota = r.CpuQuota ?? cpu.Quota,
            Period = r.CpuPeriod ?? cpu.Period,
            RealtimeRuntime = r.CpuRealtimeRuntime ?? cpu.RealtimeRuntime,
            RealtimePeriod = r.CpuRealtimePeriod ?? cpu.RealtimePeriod,
            Cpus = string.IsNullOrEmpty(r.CpusetCpus) ? cpu.Cpus : r.CpusetCpus,
            Mems = string.IsNullOrEmpty(r.CpusetMems) ? cpu.Mems : r.CpusetMems,
        };

        var hugepages = (resources.HugepageLimits ?? []).ToList();
        if (r.HugepageLimits.Count > 0)
        {
            if (!host.HugetlbControllerAvailable)
                throw new HullException(ErrorKind.FailedPrecondition, $"container \"{containerName}\": hugepage limits were adjusted, but this host has no hugetlb cgroup controller");
            foreach (var h in r.HugepageLimits)
            {
                hugepages.RemoveAll(x => x.PageSize == h.PageSize);
                hugepages.Add(h);
            }
        }

        var unified = new SortedDictionary<string, string>(resources.Unified?.ToDictionary() ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var (k, v) in r.Unified) unified[k] = v;

        OciPids? pids = resources.Pids;
        // containerd/nri: a limit of -1 or less means unlimited.
        if (r.PidsLimit is { } p) pids = p > -1 ? new OciPids(p) : null;

        return resources with
        {
            Memory = memory == new OciMemory() ? null : memory,
            Cpu = cpu == new OciCpu() ? null : cpu,
            HugepageLimits = hugepages.Count == 0 ? null : hugepages,
            Unified = unified.Count == 0 ? null : unified,
            Pids = pids,
            Devices = [.. resources.Devices ?? [], .. r.DeviceRules],
        };
    }

    private static (IReadOnlyList<OciMount> Mounts, string? RootPropagation) AdjustMounts(IReadOnlyList<OciMount> current, string? rootPropagation,
        ContainerAdjustment adjustment, string containerName, string mountInfoPath)
    {
        if (adjustment.Mounts.Count == 0 && adjustment.RemovedMounts.Count == 0) return (current, rootPropagation);
        var mounts = current.ToList();
        foreach (var destination in adjustment.RemovedMounts) mounts.RemoveAll(m => m.Destination == destination);
        IReadOnlyList<MountInfoEntry>? table = null;
        IReadOnlyList<MountInfoEntry> MountTable() => table ??= MountInfo.Parse(File.ReadAllText(mountInfoPath));
        foreach (var mount in adjustment.Mounts)
        {
            if (!mount.Destination.StartsWith('/'))
                throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerName}\": adjusted mount destination \"{mount.Destination}\" is not absolute");
            mounts.RemoveAll(m => m.Destination == mount.Destination);
            var options = mount.Options ?? [];
            if (options.Contains("rshared"))
            {
                if (mount.Source is { } s && MountInfo.Lookup(MountTable(), s) is { IsShared: false } notShared)
                    throw new HullException(ErrorKind.FailedPrecondition,
                        $"container \"{containerName}\": adjusted mount \"{s}\" (at \"{mount.Destination}\") wants rshared propagation, but it is on \"{notShared.MountPoint}\", which is not a shared mount");
                rootPropagation = "rshared";
            }
            else if (options.Contains("rslave"))
            {
                if (mount.Source is { } s && MountInfo.Lookup(MountTable(), s) is { IsShared: false, IsSlave: false } privateMount)
                    throw new HullException(ErrorKind.FailedPrecondition,
                        $"container \"{containerName}\": adjusted mount \"{s}\" (at \"{mount.Destination}\") wants rslave propagation, but it is on \"{privateMount.MountPoint}\", which is neither a shared nor a slave mount");
                if (rootPropagation is not ("rshared" or "rslave")) rootPropagation = "rslave";
            }
            mounts.Add(mount);
        }
        // Parents before children: fewer path components first, then by destination (containerd/nri's orderedMounts).
        var ordered = mounts
            .OrderBy(m => Path.TrimEndingDirectorySeparator(m.Destination).Count(c => c == '/'))
            .ThenBy(m => m.Destination, StringComparer.Ordinal)
            .ToList();
        return (ordered, rootPropagation);
    }
}
