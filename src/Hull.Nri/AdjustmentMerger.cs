using Hull.Core;
using NriPb = Hull.Api.Nri; // not "Pb": Google.Protobuf 3.36 has a global namespace of that name
using Field = Hull.Api.Nri.Field;

namespace Hull.Nri;

/// <summary>
/// Collects the responses of the plugins of one event into one result, in plugin order (containerd/nri's
/// pkg/adaptation/result.go): each adjustment is merged into the reply and into the request the next plugin sees,
/// with owner tracking so two plugins setting the same field fail naming both. Removals are keys marked with a
/// leading '-'. Updates of other containers are merged per container.
/// </summary>
internal sealed class AdjustmentMerger
{
    private readonly NriPb.Container? _created;
    private readonly NriPb.UpdateContainerRequest? _updated;
    private readonly Dictionary<string, NriPb.ContainerUpdate> _updates = new(StringComparer.Ordinal);
    private readonly List<NriPb.ContainerUpdate> _updateOrder = [];

    public AdjustmentOwners Owners { get; } = new();
    public NriPb.ContainerAdjustment Adjustment { get; } = NewAdjustment();
    public List<NriPb.ContainerEviction> Evictions { get; } = [];

    private AdjustmentMerger(NriPb.Container? created, NriPb.UpdateContainerRequest? updated)
    {
        _created = created;
        _updated = updated;
    }

    /// <summary>For CreateContainer: <paramref name="request"/>'s container is updated as plugins adjust it.</summary>
    public static AdjustmentMerger ForCreate(NriPb.CreateContainerRequest request)
    {
        var c = request.Container;
        c.Hooks ??= new NriPb.Hooks();
        c.Linux ??= new NriPb.LinuxContainer();
        c.Linux.Resources ??= new NriPb.LinuxResources();
        c.Linux.Resources.Memory ??= new NriPb.LinuxMemory();
        c.Linux.Resources.Cpu ??= new NriPb.LinuxCPU();
        return new AdjustmentMerger(c, null);
    }

    public static AdjustmentMerger ForUpdate(NriPb.UpdateContainerRequest request)
    {
        request.LinuxResources ??= new NriPb.LinuxResources();
        request.LinuxResources.Memory ??= new NriPb.LinuxMemory();
        request.LinuxResources.Cpu ??= new NriPb.LinuxCPU();
        return new AdjustmentMerger(null, request);
    }

    public static AdjustmentMerger ForStop() => new(null, null);

    private static NriPb.ContainerAdjustment NewAdjustment() => new()
    {
        Hooks = new NriPb.Hooks(),
        Linux = new NriPb.LinuxContainerAdjustment
        {
            Resources = new NriPb.LinuxResources { Memory = new NriPb.LinuxMemory(), Cpu = new NriPb.LinuxCPU() },
        },
    };

    /// <summary>Updates of other containers (and, for UpdateContainer, the updated one last).</summary>
    public IReadOnlyList<NriPb.ContainerUpdate> Updates =>
        _updated is not null && _updates.TryGetValue(_updated.Container.Id, out var own) ? [.. _updateOrder, own] : _updateOrder;

    /// <summary>For UpdateContainer: the resources the container gets after every plugin had its say.</summary>
    public NriPb.LinuxResources? UpdatedResources => _updated?.LinuxResources;

    public void Adjust(NriPb.ContainerAdjustment? a, string plugin)
    {
        if (a is null || _created is null) return;
        var id = _created.Id;
        AdjustMap(a.Annotations, Adjustment.Annotations, _created.Annotations, Field.Annotations, id, plugin);
        AdjustMounts(a.Mounts, id, plugin);
        AdjustEnv(a.Env, id, plugin);
        if (a.Args.Count > 0)
        {
            var args = a.Args.ToList();
            if (args[0] == "")
            {
                Owners.Clear(id, Field.Args, plugin);
                args.RemoveAt(0);
            }
            Owners.Claim(id, Field.Args, plugin);
            Adjustment.Args.Clear();
            Adjustment.Args.AddRange(args);
            _created.Args.Clear();
            _created.Args.AddRange(args);
        }
        AdjustHooks(a.Hooks, id, plugin);
        if (a.Linux is { } linux)
        {
            var adjust = Adjustment.Linux;
            AdjustDevices(linux.Devices, id, plugin);
            if (linux.Resources is { } r) AdjustResources(r, _created.Linux.Resources, adjust.Resources, id, plugin);
            if (linux.CgroupsPath.Length > 0)
            {
                Owners.Claim(id, Field.CgroupsPath, plugin);
                _created.Linux.CgroupsPath = adjust.CgroupsPath = linux.CgroupsPath;
            }
            if (linux.OomScoreAdj is { } oom)
            {
                Owners.Claim(id, Field.OomScoreAdj, plugin);
                _created.Linux.OomScoreAdj = adjust.OomScoreAdj = oom;
            }
            if (linux.IoPriority is { } io)
            {
                Owners.Claim(id, Field.IoPriority, plugin);
                _created.Linux.IoPriority = adjust.IoPriority = io;
            }
            if (linux.SeccompPolicy is { } seccomp)
            {
                Owners.Claim(id, Field.SeccompPolicy, plugin);
                _created.Linux.SeccompPolicy = adjust.SeccompPolicy = seccomp;
            }
            AdjustNamespaces(linux.Namespaces, id, plugin);
            AdjustMap(linux.Sysctl, adjust.Sysctl, _created.Linux.Sysctl, Field.Sysctl, id, plugin);
            if (linux.NetDevices.Count > 0)
            {
                foreach (var (k, v) in linux.NetDevices)
                {
                    if (k.StartsWith('-')) { Owners.Clear(id, Field.LinuxNetDevices, k[1..], plugin); adjust.NetDevices[k] = v ?? new NriPb.LinuxNetDevice(); continue; }
                    Owners.Claim(id, Field.LinuxNetDevices, k, plugin);
                    adjust.NetDevices[k] = v;
                }
            }
            if (linux.Scheduler is { } sched)
            {
                Owners.Claim(id, Field.LinuxSched, plugin);
                _created.Linux.Scheduler = adjust.Scheduler = sched;
            }
            if (linux.Rdt is { } rdt)
            {
                adjust.Rdt ??= new NriPb.LinuxRdt();
                if (rdt.Remove) adjust.Rdt = new NriPb.LinuxRdt { Remove = true };
                if (rdt.ClosId is { } clos) { Owners.Claim(id, Field.RdtClosId, plugin); adjust.Rdt.ClosId = clos; adjust.Rdt.Remove = false; }
                if (rdt.Schemata is { } schemata) { Owners.Claim(id, Field.RdtSchemata, plugin); adjust.Rdt.Schemata = schemata; adjust.Rdt.Remove = false; }
                if (rdt.EnableMonitoring is { } mon) { Owners.Claim(id, Field.RdtEnableMonitoring, plugin); adjust.Rdt.EnableMonitoring = mon; adjust.Rdt.Remove = false; }
            }
            if (linux.MemoryPolicy is { } mpol)
            {
                Owners.Claim(id, Field.MemoryPolicy, plugin);
                adjust.MemoryPolicy = mpol;
            }
        }
        foreach (var l in a.Rlimits)
        {
            Owners.Claim(id, Field.Rlimits, l.Type, plugin);
            _created.Rlimits.Add(l);
            Adjustment.Rlimits.Add(l);
        }
        foreach (var d in a.CDIDevices)
        {
            Owners.Claim(id, Field.CdiDevices, d.Name, plugin);
            Adjustment.CDIDevices.Add(d);
        }
    }

    /// <summary>Annotation- and sysctl-like maps: "-key" removes, anything else sets (and claims) the key.</summary>
    private void AdjustMap(IDictionary<string, string> requested, IDictionary<string, string> reply, IDictionary<string, string> container,
        Field field, string id, string plugin)
    {
        var removed = requested.Keys.Where(k => k.StartsWith('-')).Select(k => k[1..]).ToHashSet(StringComparer.Ordinal);
        foreach (var (k, v) in requested)
        {
            if (k.StartsWith('-')) continue;
            if (removed.Remove(k))
            {
                Owners.Clear(id, field, k, plugin);
                container.Remove(k);
            }
            Owners.Claim(id, field, k, plugin);
            container[k] = v;
            reply[k] = v;
        }
        foreach (var k in removed)
        {
            Owners.Clear(id, field, k, plugin);
            container.Remove(k);
            reply.Remove(k);
            reply["-" + k] = "";
        }
    }

    private void AdjustMounts(IList<NriPb.Mount> mounts, string id, string plugin)
    {
        if (mounts.Count == 0) return;
        var removed = mounts.Where(m => m.Destination.StartsWith('-')).ToDictionary(m => m.Destination[1..], StringComparer.Ordinal);
        var added = mounts.Where(m => !m.Destination.StartsWith('-')).ToList();
        var modified = added.Select(m => m.Destination).ToHashSet(StringComparer.Ordinal);
        foreach (var m in Adjustment.Mounts.Where(m => removed.ContainsKey(m.Destination)).ToList())
        {
            Owners.Clear(id, Field.Mounts, m.Destination, plugin);
            Adjustment.Mounts.Remove(m);
        }
        var kept = _created!.Mounts.Where(m => !removed.ContainsKey(m.Destination) && !modified.Contains(m.Destination)).ToList();
        foreach (var m in added)
        {
            Owners.Claim(id, Field.Mounts, m.Destination, plugin);
            Adjustment.Mounts.Add(m);
        }
        foreach (var (destination, m) in removed)
            if (!modified.Contains(destination)) Adjustment.Mounts.Add(m);
        _created.Mounts.Clear();
        _created.Mounts.AddRange(kept);
        _created.Mounts.AddRange(added);
    }

    private void AdjustEnv(IList<NriPb.KeyValue> env, string id, string plugin)
    {
        if (env.Count == 0) return;
        var removed = env.Where(e => e.Key.StartsWith('-')).Select(e => e.Key[1..]).ToHashSet(StringComparer.Ordinal);
        var added = env.Where(e => !e.Key.StartsWith('-')).ToList();
        var modified = added.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var e in Adjustment.Env.Where(e => removed.Contains(e.Key)).ToList())
        {
            Owners.Clear(id, Field.Env, e.Key, plugin);
            Adjustment.Env.Remove(e);
        }
        var kept = _created!.Env.Where(e =>
        {
            var key = e.Split('=', 2)[0];
            return !removed.Contains(key) && !modified.Contains(key);
        }).ToList();
        foreach (var e in added)
        {
            Owners.Claim(id, Field.Env, e.Key, plugin);
            Adjustment.Env.Add(e);
        }
        // Removals of variables nobody re-adds go to the runtime too, so it drops them from the spec.
        foreach (var key in removed)
            if (!modified.Contains(key)) Adjustment.Env.Add(new NriPb.KeyValue { Key = "-" + key });
        _created.Env.Clear();
        _created.Env.AddRange(kept);
        _created.Env.AddRange(added.Select(e => $"{e.Key}={e.Value}"));
    }

    private void AdjustHooks(NriPb.Hooks? hooks, string id, string plugin)
    {
        if (hooks is null) return;
        var reply = Adjustment.Hooks;
        var container = _created!.Hooks;
        bool any = false;
        void Add(Google.Protobuf.Collections.RepeatedField<NriPb.Hook> from, Google.Protobuf.Collections.RepeatedField<NriPb.Hook> to1, Google.Protobuf.Collections.RepeatedField<NriPb.Hook> to2)
        {
            if (from.Count == 0) return;
            to1.AddRange(from);
            to2.AddRange(from);
            any = true;
        }
        Add(hooks.Prestart, reply.Prestart, container.Prestart);
        Add(hooks.Poststart, reply.Poststart, container.Poststart);
        Add(hooks.Poststop, reply.Poststop, container.Poststop);
        Add(hooks.CreateRuntime, reply.CreateRuntime, container.CreateRuntime);
        Add(hooks.CreateContainer, reply.CreateContainer, container.CreateContainer);
        Add(hooks.StartContainer, reply.StartContainer, container.StartContainer);
        if (any) Owners.Accumulate(id, Field.OciHooks, plugin);
    }

    private void AdjustDevices(IList<NriPb.LinuxDevice> devices, string id, string plugin)
    {
        if (devices.Count == 0) return;
        var removed = devices.Where(d => d.Path.StartsWith('-')).Select(d => d.Path[1..]).ToHashSet(StringComparer.Ordinal);
        var added = devices.Where(d => !d.Path.StartsWith('-')).ToList();
        var modified = added.Select(d => d.Path).ToHashSet(StringComparer.Ordinal);
        var reply = Adjustment.Linux.Devices;
        foreach (var d in reply.Where(d => removed.Contains(d.Path)).ToList())
        {
            Owners.Clear(id, Field.Devices, d.Path, plugin);
            reply.Remove(d);
        }
        var kept = _created!.Linux.Devices.Where(d => !removed.Contains(d.Path) && !modified.Contains(d.Path)).ToList();
        foreach (var d in added)
        {
            Owners.Claim(id, Field.Devices, d.Path, plugin);
            reply.Add(d);
        }
        foreach (var path in removed)
            if (!modified.Contains(path)) reply.Add(new NriPb.LinuxDevice { Path = "-" + path });
        _created.Linux.Devices.Clear();
        _created.Linux.Devices.AddRange(kept);
        _created.Linux.Devices.AddRange(added);
    }

    private void AdjustNamespaces(IList<NriPb.LinuxNamespace> namespaces, string id, string plugin)
    {
        if (namespaces.Count == 0) return;
        var current = _created!.Linux.Namespaces.ToDictionary(n => n.Type, StringComparer.Ordinal);
        foreach (var n in namespaces)
        {
            bool remove = n.Type.StartsWith('-');
            var key = remove ? n.Type[1..] : n.Type;
            Owners.Claim(id, Field.Namespace, key, plugin);
            if (remove) current.Remove(key);
            else current[key] = n;
            Adjustment.Linux.Namespaces.Add(n);
        }
        _created.Linux.Namespaces.Clear();
        _created.Linux.Namespaces.AddRange(current.Values);
    }

    /// <summary>Merges resource settings into <paramref name="target"/> (and <paramref name="reply"/>), claiming each field.</summary>
    private void AdjustResources(NriPb.LinuxResources r, NriPb.LinuxResources target, NriPb.LinuxResources? reply, string id, string plugin)
    {
        target.Memory ??= new NriPb.LinuxMemory();
        target.Cpu ??= new NriPb.LinuxCPU();
        void Set<T>(T? value, Field field, Action<NriPb.LinuxResources, T> assign) where T : class
        {
            if (value is null) return;
            Owners.Claim(id, field, plugin);
            assign(target, value);
            if (reply is not null) assign(reply, value);
        }
        if (r.Memory is { } m)
        {
            Set(m.Limit, Field.MemLimit, (t, v) => t.Memory.Limit = v);
            Set(m.Reservation, Field.MemReservation, (t, v) => t.Memory.Reservation = v);
            Set(m.Swap, Field.MemSwapLimit, (t, v) => t.Memory.Swap = v);
            Set(m.Kernel, Field.MemKernelLimit, (t, v) => t.Memory.Kernel = v);
            Set(m.KernelTcp, Field.MemTcplimit, (t, v) => t.Memory.KernelTcp = v);
            Set(m.Swappiness, Field.MemSwappiness, (t, v) => t.Memory.Swappiness = v);
            Set(m.DisableOomKiller, Field.MemDisableOomKiller, (t, v) => t.Memory.DisableOomKiller = v);
            Set(m.UseHierarchy, Field.MemUseHierarchy, (t, v) => t.Memory.UseHierarchy = v);
        }
        if (r.Cpu is { } c)
        {
            Set(c.Shares, Field.Cpushares, (t, v) => t.Cpu.Shares = v);
            Set(c.Quota, Field.Cpuquota, (t, v) => t.Cpu.Quota = v);
            Set(c.Period, Field.Cpuperiod, (t, v) => t.Cpu.Period = v);
            Set(c.RealtimeRuntime, Field.CpurealtimeRuntime, (t, v) => t.Cpu.RealtimeRuntime = v);
            Set(c.RealtimePeriod, Field.CpurealtimePeriod, (t, v) => t.Cpu.RealtimePeriod = v);
            Set(c.Cpus.Length == 0 ? null : c.Cpus, Field.CpusetCpus, (t, v) => t.Cpu.Cpus = v);
            Set(c.Mems.Length == 0 ? null : c.Mems, Field.CpusetMems, (t, v) => t.Cpu.Mems = v);
        }
        foreach (var h in r.HugepageLimits)
        {
            Owners.Claim(id, Field.HugepageLimits, h.PageSize, plugin);
            target.HugepageLimits.Add(h);
            reply?.HugepageLimits.Add(h);
        }
        // Device cgroup rules are appended and never conflict (upstream does not track them either).
        target.Devices.AddRange(r.Devices);
        reply?.Devices.AddRange(r.Devices);
        foreach (var (k, v) in r.Unified)
        {
            Owners.Claim(id, Field.CgroupsUnified, k, plugin);
            target.Unified[k] = v;
            if (reply is not null) reply.Unified[k] = v;
        }
        Set(r.BlockioClass, Field.BlockioClass, (t, v) => t.BlockioClass = v);
        Set(r.RdtClass, Field.RdtClass, (t, v) => t.RdtClass = v);
        Set(r.Pids, Field.PidsLimit, (t, v) => t.Pids = v);
    }

    /// <summary>Merges a plugin's updates of other containers (and, for UpdateContainer, of the updated one).</summary>
    public void Update(IEnumerable<NriPb.ContainerUpdate> updates, string plugin)
    {
        foreach (var u in updates)
        {
            if (_created is not null && u.ContainerId == _created.Id)
                throw new HullException(ErrorKind.FailedPrecondition, $"plugin \"{plugin}\" asked update of \"{u.ContainerId}\" during creation");
            if (!_updates.TryGetValue(u.ContainerId, out var merged))
            {
                merged = new NriPb.ContainerUpdate
                {
                    ContainerId = u.ContainerId,
                    IgnoreFailure = u.IgnoreFailure,
                    Linux = new NriPb.LinuxContainerUpdate { Resources = new NriPb.LinuxResources { Memory = new NriPb.LinuxMemory(), Cpu = new NriPb.LinuxCPU() } },
                };
                _updates[u.ContainerId] = merged;
                if (_updated is null || _updated.Container.Id != u.ContainerId) _updateOrder.Add(merged);
            }
            else
            {
                merged.IgnoreFailure &= u.IgnoreFailure;
            }
            if (u.Linux?.Resources is not { } requested) continue;
            bool own = _updated is not null && _updated.Container.Id == u.ContainerId;
            // Work on a copy so an ignored failure changes nothing.
            var resources = (own ? _updated!.LinuxResources : merged.Linux.Resources).Clone();
            try
            {
                AdjustResources(requested, resources, null, u.ContainerId, plugin);
            }
            catch (HullException) when (u.IgnoreFailure)
            {
                continue;
            }
            merged.Linux.Resources = resources.Clone();
            if (own) _updated!.LinuxResources = resources.Clone();
        }
    }
}
