using Hull.Core;
using Hull.Runtime.Spec;
using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name

namespace Hull.Nri;

/// <summary>Between Hull's domain records and the NRI protobuf messages (containerd's internal/nri domain conversion).</summary>
internal static class ApiConversion
{
    public static NriPb.PodSandbox ToApi(NriPod pod)
    {
        var api = new NriPb.PodSandbox
        {
            Id = pod.Id,
            Name = pod.Name,
            Uid = pod.Uid,
            Namespace = pod.Namespace,
            RuntimeHandler = pod.RuntimeHandler,
            Pid = pod.Pid,
            Linux = new NriPb.LinuxPodSandbox
            {
                CgroupParent = pod.CgroupParent,
                CgroupsPath = pod.CgroupsPath,
                PodOverhead = ToApi(pod.PodOverhead),
                PodResources = ToApi(pod.PodResources),
            },
        };
        AddAll(api.Labels, pod.Labels);
        AddAll(api.Annotations, pod.Annotations);
        api.Ips.AddRange(pod.Ips);
        api.Linux.Namespaces.AddRange(pod.Namespaces.Select(n => new NriPb.LinuxNamespace { Type = n.Type, Path = n.Path ?? "" }));
        return api;
    }

    public static NriPb.Container ToApi(NriContainer container)
    {
        var api = new NriPb.Container
        {
            Id = container.Id,
            PodSandboxId = container.PodSandboxId,
            Name = container.Name,
            State = container.State switch
            {
                NriContainerState.Created => NriPb.ContainerState.ContainerCreated,
                NriContainerState.Paused => NriPb.ContainerState.ContainerPaused,
                NriContainerState.Running => NriPb.ContainerState.ContainerRunning,
                NriContainerState.Stopped => NriPb.ContainerState.ContainerStopped,
                _ => NriPb.ContainerState.ContainerUnknown,
            },
            Pid = container.Pid,
            CreatedAt = Nanos(container.CreatedAt),
            StartedAt = Nanos(container.StartedAt),
            FinishedAt = Nanos(container.FinishedAt),
            ExitCode = container.ExitCode,
            StatusReason = container.StatusReason,
            StatusMessage = container.StatusMessage,
            Image = new NriPb.Image { Name = container.ImageName, Digest = container.ImageDigest, ConfigDigest = container.ImageConfigDigest },
            Hooks = new NriPb.Hooks(),
            Linux = new NriPb.LinuxContainer { Resources = new NriPb.LinuxResources() },
        };
        AddAll(api.Labels, container.Labels);
        AddAll(api.Annotations, container.Annotations);
        api.CDIDevices.AddRange(container.CdiDevices.Select(d => new NriPb.CDIDevice { Name = d }));
        if (container.Spec is { } spec) FromSpec(spec, api);
        return api;
    }

    private static void AddAll(Google.Protobuf.Collections.MapField<string, string> map, IReadOnlyDictionary<string, string> entries)
    {
        foreach (var (k, v) in entries) map[k] = v;
    }

    private static long Nanos(DateTimeOffset? t) => t is { } v ? (v - DateTimeOffset.UnixEpoch).Ticks * 100 : 0;

    /// <summary>The parts of a container NRI takes from its OCI spec (containerd/nri's FromOCI helpers).</summary>
    private static void FromSpec(OciSpec spec, NriPb.Container api)
    {
        if (spec.Process is { } process)
        {
            api.Args.AddRange(process.Args ?? []);
            api.Env.AddRange(process.Env ?? []);
            api.Rlimits.AddRange((process.Rlimits ?? []).Select(r => new NriPb.POSIXRlimit { Type = r.Type, Hard = r.Hard, Soft = r.Soft }));
            api.User = new NriPb.User { Uid = process.User.Uid, Gid = process.User.Gid };
            api.User.AdditionalGids.AddRange(process.User.AdditionalGids ?? []);
            if (process.OomScoreAdj is { } oom) api.Linux.OomScoreAdj = new NriPb.OptionalInt { Value = oom };
        }
        if (spec.Annotations is { } annotations)
            foreach (var (k, v) in annotations) api.Annotations[k] = v;
        api.Mounts.AddRange((spec.Mounts ?? []).Select(m =>
        {
            var mount = new NriPb.Mount { Destination = m.Destination, Type = m.Type ?? "", Source = m.Source ?? "" };
            mount.Options.AddRange(m.Options ?? []);
            return mount;
        }));
        if (spec.Hooks is { } hooks)
        {
            api.Hooks.Prestart.AddRange(ToApi(hooks.Prestart));
            api.Hooks.CreateRuntime.AddRange(ToApi(hooks.CreateRuntime));
            api.Hooks.CreateContainer.AddRange(ToApi(hooks.CreateContainer));
            api.Hooks.StartContainer.AddRange(ToApi(hooks.StartContainer));
            api.Hooks.Poststart.AddRange(ToApi(hooks.Poststart));
            api.Hooks.Poststop.AddRange(ToApi(hooks.Poststop));
        }
        if (spec.Linux is { } linux)
        {
            api.Linux.CgroupsPath = linux.CgroupsPath ?? "";
            api.Linux.Namespaces.AddRange((linux.Namespaces ?? []).Select(n => new NriPb.LinuxNamespace { Type = n.Type, Path = n.Path ?? "" }));
            api.Linux.Devices.AddRange((linux.Devices ?? []).Select(ToApi));
            api.Linux.Resources = ToApi(linux.Resources) ?? new NriPb.LinuxResources();
            if (linux.Sysctl is { } sysctl) AddAll(api.Linux.Sysctl, sysctl);
            if (linux.Seccomp is { } seccomp) api.Linux.SeccompPolicy = ToApi(seccomp);
        }
    }

    private static IEnumerable<NriPb.Hook> ToApi(IReadOnlyList<OciHook>? hooks) => (hooks ?? []).Select(h =>
    {
        var hook = new NriPb.Hook { Path = h.Path };
        hook.Args.AddRange(h.Args ?? []);
        hook.Env.AddRange(h.Env ?? []);
        if (h.Timeout is { } t) hook.Timeout = new NriPb.OptionalInt { Value = t };
        return hook;
    });

    private static NriPb.LinuxDevice ToApi(OciDevice d)
    {
        var device = new NriPb.LinuxDevice { Path = d.Path, Type = d.Type, Major = d.Major, Minor = d.Minor };
        if (d.FileMode is { } mode) device.FileMode = new NriPb.OptionalFileMode { Value = mode };
        if (d.Uid is { } uid) device.Uid = new NriPb.OptionalUInt32 { Value = uid };
        if (d.Gid is { } gid) device.Gid = new NriPb.OptionalUInt32 { Value = gid };
        return device;
    }

    private static NriPb.LinuxSeccomp ToApi(OciSeccomp s)
    {
        var api = new NriPb.LinuxSeccomp { DefaultAction = s.DefaultAction, ListenerPath = s.ListenerPath ?? "", ListenerMetadata = s.ListenerMetadata ?? "" };
        if (s.DefaultErrnoRet is { } errno) api.DefaultErrno = new NriPb.OptionalUInt32 { Value = errno };
        api.Architectures.AddRange(s.Architectures ?? []);
        api.Flags.AddRange(s.Flags ?? []);
        foreach (var sc in s.Syscalls ?? [])
        {
            var syscall = new NriPb.LinuxSyscall { Action = sc.Action };
            syscall.Names.AddRange(sc.Names);
            if (sc.ErrnoRet is { } e) syscall.ErrnoRet = new NriPb.OptionalUInt32 { Value = e };
            syscall.Args.AddRange((sc.Args ?? []).Select(a => new NriPb.LinuxSeccompArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo ?? 0, Op = a.Op }));
            api.Syscalls.Add(syscall);
        }
        return api;
    }

    private static OciSeccomp FromApi(NriPb.LinuxSeccomp s) => new()
    {
        DefaultAction = s.DefaultAction,
        DefaultErrnoRet = s.DefaultErrno?.Value,
        Architectures = s.Architectures.Count == 0 ? null : s.Architectures.ToArray(),
        Flags = s.Flags.Count == 0 ? null : s.Flags.ToArray(),
        ListenerPath = s.ListenerPath.Length == 0 ? null : s.ListenerPath,
        ListenerMetadata = s.ListenerMetadata.Length == 0 ? null : s.ListenerMetadata,
        Syscalls = s.Syscalls.Select(sc => new OciSyscall
        {
            Names = sc.Names.ToArray(),
            Action = sc.Action,
            ErrnoRet = sc.ErrnoRet?.Value,
            Args = sc.Args.Count == 0 ? null : sc.Args.Select(a => new OciSyscallArg { Index = a.Index, Value = a.Value, ValueTwo = a.ValueTwo, Op = a.Op }).ToArray(),
        }).ToArray(),
    };

    public static NriPb.LinuxResources? ToApi(OciResources? r)
    {
        if (r is null) return null;
        var api = new NriPb.LinuxResources();
        if (r.Memory is { } m)
        {
            api.Memory = new NriPb.LinuxMemory();
            if (m.Limit is { } l) api.Memory.Limit = new NriPb.OptionalInt64 { Value = l };
            if (m.Reservation is { } res) api.Memory.Reservation = new NriPb.OptionalInt64 { Value = res };
            if (m.Swap is { } s) api.Memory.Swap = new NriPb.OptionalInt64 { Value = s };
            if (m.Swappiness is { } sw) api.Memory.Swappiness = new NriPb.OptionalUInt64 { Value = sw };
            if (m.DisableOomKiller is { } d) api.Memory.DisableOomKiller = new NriPb.OptionalBool { Value = d };
        }
        if (r.Cpu is { } c)
        {
            api.Cpu = new NriPb.LinuxCPU { Cpus = c.Cpus ?? "", Mems = c.Mems ?? "" };
            if (c.Shares is { } sh) api.Cpu.Shares = new NriPb.OptionalUInt64 { Value = sh };
            if (c.Quota is { } q) api.Cpu.Quota = new NriPb.OptionalInt64 { Value = q };
            if (c.Period is { } p) api.Cpu.Period = new NriPb.OptionalUInt64 { Value = p };
            if (c.RealtimeRuntime is { } rr) api.Cpu.RealtimeRuntime = new NriPb.OptionalInt64 { Value = rr };
            if (c.RealtimePeriod is { } rp) api.Cpu.RealtimePeriod = new NriPb.OptionalUInt64 { Value = rp };
        }
        api.HugepageLimits.AddRange((r.HugepageLimits ?? []).Select(h => new NriPb.HugepageLimit { PageSize = h.PageSize, Limit = h.Limit }));
        if (r.Unified is { } u) AddAll(api.Unified, u);
        if (r.Pids is { } pids) api.Pids = new NriPb.LinuxPids { Limit = pids.Limit };
        api.Devices.AddRange((r.Devices ?? []).Select(d => new NriPb.LinuxDeviceCgroup
        {
            Allow = d.Allow,
            Type = d.Type ?? "",
            Access = d.Access ?? "",
            Major = d.Major is { } major ? new NriPb.OptionalInt64 { Value = major } : null,
            Minor = d.Minor is { } minor ? new NriPb.OptionalInt64 { Value = minor } : null,
        }));
        return api;
    }

    public static OciResources FromApi(NriPb.LinuxResources r)
    {
        OciMemory? memory = r.Memory is { } m
            ? new OciMemory { Limit = m.Limit?.Value, Reservation = m.Reservation?.Value, Swap = m.Swap?.Value, Swappiness = m.Swappiness?.Value, DisableOomKiller = m.DisableOomKiller?.Value }
            : null;
        OciCpu? cpu = r.Cpu is { } c
            ? new OciCpu
            {
                Shares = c.Shares?.Value, Quota = c.Quota?.Value, Period = c.Period?.Value, RealtimeRuntime = c.RealtimeRuntime?.Value,
                RealtimePeriod = c.RealtimePeriod?.Value, Cpus = c.Cpus.Length == 0 ? null : c.Cpus, Mems = c.Mems.Length == 0 ? null : c.Mems,
            }
            : null;
        return new OciResources
        {
            Memory = memory == new OciMemory() ? null : memory,
            Cpu = cpu == new OciCpu() ? null : cpu,
            HugepageLimits = r.HugepageLimits.Count == 0 ? null : r.HugepageLimits.Select(h => new OciHugepageLimit(h.PageSize, h.Limit)).ToArray(),
            Unified = r.Unified.Count == 0 ? null : new Dictionary<string, string>(r.Unified),
            Pids = r.Pids is { } p ? new OciPids(p.Limit) : null,
        };
    }

    public static NriContainerUpdate FromApi(NriPb.ContainerUpdate u) =>
        new(u.ContainerId, u.Linux?.Resources is { } r ? FromApi(r) : new OciResources(), u.IgnoreFailure);

    public static NriPb.ContainerUpdate ToApi(NriContainerUpdate u) => new()
    {
        ContainerId = u.ContainerId,
        IgnoreFailure = u.IgnoreFailure,
        Linux = new NriPb.LinuxContainerUpdate { Resources = ToApi(u.Resources) },
    };

    public static NriContainerEviction FromApi(NriPb.ContainerEviction e) => new(e.ContainerId, e.Reason);

    /// <summary>
    /// The merged adjustment in OCI terms. Parts Hull's spec cannot express (I/O priority, scheduler, RDT, memory
    /// policy, network devices, block I/O and RDT classes) are refused naming the plugins that set them, rather
    /// than dropped without a word.
    /// </summary>
    public static ContainerAdjustment FromApi(NriPb.ContainerAdjustment a, AdjustmentOwners owners, string containerId, string containerName)
    {
        var linux = a.Linux ?? new NriPb.LinuxContainerAdjustment();
        void Unsupported(bool set, NriPb.Field field, string what)
        {
            if (!set) return;
            var by = owners.OwnersOf(containerId, field);
            throw new HullException(ErrorKind.FailedPrecondition,
                $"container \"{containerName}\": NRI plugin {(by.Length == 0 ? "adjustment" : string.Join(", ", by.Select(p => $"\"{p}\"")))} sets {what}, which Hull does not support");
        }
        Unsupported(linux.IoPriority is not null, NriPb.Field.IoPriority, "the I/O priority");
        Unsupported(linux.Scheduler is not null, NriPb.Field.LinuxSched, "the scheduling policy");
        Unsupported(linux.Rdt is { } rdt && (rdt.ClosId is not null || rdt.Schemata is not null || rdt.EnableMonitoring is not null), NriPb.Field.RdtClosId, "RDT");
        Unsupported(linux.MemoryPolicy is not null, NriPb.Field.MemoryPolicy, "a memory policy");
        Unsupported(linux.NetDevices.Keys.Any(k => !k.StartsWith('-')), NriPb.Field.LinuxNetDevices, "network devices");
        Unsupported(linux.Resources?.BlockioClass is not null, NriPb.Field.BlockioClass, "a block I/O class");
        Unsupported(linux.Resources?.RdtClass is not null, NriPb.Field.RdtClass, "an RDT class");

        var (annotations, removedAnnotations) = Split(a.Annotations);
        var (sysctls, removedSysctls) = Split(linux.Sysctl);
        return new ContainerAdjustment
        {
            Annotations = annotations,
            RemovedAnnotations = removedAnnotations,
            Mounts = a.Mounts.Where(m => !m.Destination.StartsWith('-')).Select(m => new OciMount
            {
                Destination = m.Destination,
                Type = m.Type.Length == 0 ? null : m.Type,
                Source = m.Source.Length == 0 ? null : m.Source,
                Options = m.Options.ToArray(),
            }).ToArray(),
            RemovedMounts = a.Mounts.Where(m => m.Destination.StartsWith('-')).Select(m => m.Destination[1..]).ToArray(),
            Env = a.Env.Where(e => !e.Key.StartsWith('-')).Select(e => new EnvVar(e.Key, e.Value)).ToArray(),
            RemovedEnv = a.Env.Where(e => e.Key.StartsWith('-')).Select(e => e.Key[1..]).ToArray(),
            Args = a.Args.Count == 0 ? null : a.Args.ToArray(),
            Hooks = a.Hooks is { } h && h.CalculateSize() > 0 ? new OciHooks
            {
                Prestart = FromApi(h.Prestart),
                CreateRuntime = FromApi(h.CreateRuntime),
                CreateContainer = FromApi(h.CreateContainer),
                StartContainer = FromApi(h.StartContainer),
                Poststart = FromApi(h.Poststart),
                Poststop = FromApi(h.Poststop),
            } : null,
            Devices = linux.Devices.Where(d => !d.Path.StartsWith('-')).Select(d => new OciDevice
            {
                Path = d.Path, Type = d.Type, Major = d.Major, Minor = d.Minor, FileMode = d.FileMode?.Value, Uid = d.Uid?.Value, Gid = d.Gid?.Value,
            }).ToArray(),
            RemovedDevices = linux.Devices.Where(d => d.Path.StartsWith('-')).Select(d => d.Path[1..]).ToArray(),
            CdiDevices = a.CDIDevices.Select(d => d.Name).ToArray(),
            Resources = linux.Resources is { } r ? FromApiAdjustment(r) : null,
            CgroupsPath = linux.CgroupsPath.Length == 0 ? null : linux.CgroupsPath,
            OomScoreAdj = linux.OomScoreAdj is { } oom ? checked((int)oom.Value) : null,
            Seccomp = linux.SeccompPolicy is { } seccomp ? FromApi(seccomp) : null,
            Namespaces = linux.Namespaces.Where(n => !n.Type.StartsWith('-')).Select(n => new OciNamespace { Type = n.Type, Path = n.Path.Length == 0 ? null : n.Path }).ToArray(),
            RemovedNamespaces = linux.Namespaces.Where(n => n.Type.StartsWith('-')).Select(n => n.Type[1..]).ToArray(),
            Sysctls = sysctls,
            RemovedSysctls = removedSysctls,
            Rlimits = a.Rlimits.Select(l => new OciRlimit(l.Type, l.Hard, l.Soft)).ToArray(),
        };
    }

    private static (Dictionary<string, string> Set, string[] Removed) Split(IDictionary<string, string> map) =>
        (map.Where(kv => !kv.Key.StartsWith('-')).ToDictionary(kv => kv.Key, kv => kv.Value),
         map.Keys.Where(k => k.StartsWith('-')).Select(k => k[1..]).ToArray());

    private static IReadOnlyList<OciHook>? FromApi(IList<NriPb.Hook> hooks) => hooks.Count == 0 ? null : hooks.Select(h => new OciHook
    {
        Path = h.Path,
        Args = h.Args.Count == 0 ? null : h.Args.ToArray(),
        Env = h.Env.Count == 0 ? null : h.Env.ToArray(),
        Timeout = h.Timeout is { } t ? checked((int)t.Value) : null,
    }).ToArray();

    private static ResourceAdjustment FromApiAdjustment(NriPb.LinuxResources r) => new()
    {
        MemoryLimit = r.Memory?.Limit?.Value,
        MemoryReservation = r.Memory?.Reservation?.Value,
        MemorySwap = r.Memory?.Swap?.Value,
        MemorySwappiness = r.Memory?.Swappiness?.Value,
        DisableOomKiller = r.Memory?.DisableOomKiller?.Value,
        CpuShares = r.Cpu?.Shares?.Value,
        CpuQuota = r.Cpu?.Quota?.Value,
        CpuPeriod = r.Cpu?.Period?.Value,
        CpuRealtimeRuntime = r.Cpu?.RealtimeRuntime?.Value,
        CpuRealtimePeriod = r.Cpu?.RealtimePeriod?.Value,
        CpusetCpus = string.IsNullOrEmpty(r.Cpu?.Cpus) ? null : r.Cpu.Cpus,
        CpusetMems = string.IsNullOrEmpty(r.Cpu?.Mems) ? null : r.Cpu.Mems,
        PidsLimit = r.Pids?.Limit,
        HugepageLimits = r.HugepageLimits.Select(h => new OciHugepageLimit(h.PageSize, h.Limit)).ToArray(),
        Unified = new Dictionary<string, string>(r.Unified),
        DeviceRules = r.Devices.Select(d => new OciDeviceCgroup { Allow = d.Allow, Type = d.Type.Length == 0 ? null : d.Type, Major = d.Major?.Value, Minor = d.Minor?.Value, Access = d.Access }).ToArray(),
    };
}
