using Hull.Cdi;
using Hull.Core;

namespace Hull.Runtime.Spec;

/// <summary>
/// Applies resolved CDI edits (<see cref="CdiInjection"/>) to a built spec, as the reference's ContainerEdits.Apply does,
/// with the builder's own rules where Hull has them: environment entries replace the same key in place
/// (<see cref="ProcessConfig.ReplaceOrAppend"/>), a device node replaces one at the same path and gets a device cgroup rule
/// like a CRI device (<see cref="DeviceGrant"/>), a mount replaces one at the same (cleaned) destination and all mounts are
/// sorted by depth (<see cref="ContainerMounts.Depth"/>). Applied after the builder, so CDI wins over the CRI config where
/// both set something, as in containerd.
/// </summary>
public static class CdiEdits
{
    public static OciSpec Apply(OciSpec spec, CdiInjection injection)
    {
        if (injection.IsEmpty) return spec;
        var process = spec.Process ?? new OciProcess();
        var linux = spec.Linux ?? new OciLinux();

        if (injection.Env.Count > 0)
            process = process with { Env = ProcessConfig.ReplaceOrAppend(process.Env ?? [], injection.Env) };

        if (injection.DeviceNodes.Count > 0)
        {
            var devices = (linux.Devices ?? []).ToList();
            var rules = (linux.Resources?.Devices ?? []).ToList();
            foreach (var node in injection.DeviceNodes)
            {
                var grant = Grant(node, process.User);
                devices.RemoveAll(d => d.Path == grant.Device.Path);
                devices.Add(grant.Device);
                if (node.NeedsCgroupRule) rules.Add(grant.Rule);
            }
            linux = linux with { Devices = devices, Resources = (linux.Resources ?? new OciResources()) with { Devices = rules } };
        }

        if (injection.NetDevices.Count > 0)
        {
            var netDevices = new Dictionary<string, OciNetDevice>(linux.NetDevices ?? new Dictionary<string, OciNetDevice>(), StringComparer.Ordinal);
            foreach (var n in injection.NetDevices) netDevices[n.HostInterfaceName] = new OciNetDevice(n.Name);
            linux = linux with { NetDevices = netDevices };
        }

        var mounts = spec.Mounts;
        if (injection.Mounts.Count > 0)
        {
            bool userNamespace = linux.Namespaces?.Any(n => n.Type == OciNamespace.User) == true;
            var list = (mounts ?? []).ToList();
            foreach (var m in injection.Mounts)
            {
                string destination = ContainerMounts.Clean(m.ContainerPath);
                list.RemoveAll(existing => ContainerMounts.Clean(existing.Destination) == destination);
                list.Add(Mount(m, userNamespace));
            }
            mounts = list.OrderBy(m => ContainerMounts.Depth(m.Destination)).ToArray();
        }

        var hooks = injection.Hooks.Count > 0 ? AddHooks(spec.Hooks ?? new OciHooks(), injection.Hooks) : spec.Hooks;

        if (injection.IntelRdt is { } rdt)
        {
            linux = linux with
            {
                IntelRdt = new OciIntelRdt
                {
                    ClosId = NullIfEmpty(rdt.ClosId),
                    L3CacheSchema = NullIfEmpty(rdt.L3CacheSchema),
                    MemBwSchema = NullIfEmpty(rdt.MemBwSchema),
                    Schemata = rdt.Schemata is { Count: > 0 } s ? s : null,
                    EnableMonitoring = rdt.EnableMonitoring ? true : null,
                },
            };
        }

        if (injection.AdditionalGids.Count > 0)
        {
            var gids = (process.User.AdditionalGids ?? []).ToList();
            foreach (var gid in injection.AdditionalGids)
                if (!gids.Contains(gid)) gids.Add(gid);
            process = process with { User = process.User with { AdditionalGids = gids } };
        }

        return spec with { Process = process, Linux = linux, Mounts = mounts, Hooks = hooks };
    }

    /// <summary>The caller's error for a CDI failure, with the kind the CDI library chose.</summary>
    public static HullException ToHullException(CdiException e) => new(e.Kind switch
    {
        CdiErrorKind.NotFound => ErrorKind.NotFound,
        CdiErrorKind.FailedPrecondition => ErrorKind.FailedPrecondition,
        _ => ErrorKind.InvalidArgument,
    }, e.Message, e);

    // A node without an owner of its own belongs to the process's user and group when those are not root (the reference's rule).
    private static DeviceGrant Grant(CdiResolvedDeviceNode node, OciUser user)
    {
        var device = new OciDevice
        {
            Type = node.Type,
            Path = node.Path,
            Major = node.Major,
            Minor = node.Minor,
            FileMode = node.FileMode,
            Uid = node.Uid ?? (user.Uid > 0 ? user.Uid : null),
            Gid = node.Gid ?? (user.Gid > 0 ? user.Gid : null),
        };
        return new DeviceGrant(device, new OciDeviceCgroup { Allow = true, Type = node.Type, Major = node.Major, Minor = node.Minor, Access = node.CgroupAccess });
    }

    private static OciMount Mount(CdiMount m, bool userNamespace)
    {
        var options = m.Options.ToList();
        if (userNamespace && IdmapOption(m) is { } idmap) options.Add(idmap);
        return new OciMount
        {
            Destination = m.ContainerPath,
            Source = m.HostPath,
            Type = NullIfEmpty(m.Type),
            Options = options.Count == 0 ? null : options,
        };
    }

    // In a user namespace a bind mount is idmapped (the reference's withIDMapForBindMount): "idmap" for bind, "ridmap" for rbind.
    private static string? IdmapOption(CdiMount m)
    {
        string? option = m.Type == "bind" ? "idmap" : null;
        foreach (var o in m.Options)
        {
            switch (o)
            {
                case "idmap" or "ridmap": return null;
                case "bind": option = "idmap"; break;
                case "rbind": option = "ridmap"; break;
            }
        }
        return option;
    }

    private static OciHooks AddHooks(OciHooks hooks, IReadOnlyList<CdiHook> added)
    {
        IReadOnlyList<OciHook>? With(IReadOnlyList<OciHook>? list, string name)
        {
            var more = added.Where(h => h.HookName == name).Select(ToOci).ToArray();
            return more.Length == 0 ? list : [.. list ?? [], .. more];
        }
        return hooks with
        {
            Prestart = With(hooks.Prestart, CdiHookNames.Prestart),
            CreateRuntime = With(hooks.CreateRuntime, CdiHookNames.CreateRuntime),
            CreateContainer = With(hooks.CreateContainer, CdiHookNames.CreateContainer),
            StartContainer = With(hooks.StartContainer, CdiHookNames.StartContainer),
            Poststart = With(hooks.Poststart, CdiHookNames.Poststart),
            Poststop = With(hooks.Poststop, CdiHookNames.Poststop),
        };
    }

    private static OciHook ToOci(CdiHook h) => new()
    {
        Path = h.Path,
        Args = h.Args.Count == 0 ? null : h.Args,
        Env = h.Env.Count == 0 ? null : h.Env,
        Timeout = h.Timeout,
    };

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
