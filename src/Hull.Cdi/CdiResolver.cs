namespace Hull.Cdi;

/// <summary>Merges the edits of found devices into one <see cref="CdiInjection"/> (the reference's ContainerEdits.Append in InjectDevices' order).</summary>
internal static class CdiResolver
{
    public static CdiInjection Resolve(IReadOnlyList<(CdiSpecFile Spec, CdiDevice Device)> devices)
    {
        if (devices.Count == 0) return CdiInjection.None;
        var injected = new List<CdiInjectedDevice>(devices.Count);
        var env = new List<string>();
        var nodes = new List<CdiResolvedDeviceNode>();
        var mounts = new List<CdiMount>();
        var hooks = new List<CdiHook>();
        var gids = new List<uint>();
        var netDevices = new List<CdiNetDevice>();
        CdiIntelRdt? intelRdt = null;
        var specsSeen = new HashSet<CdiSpecFile>();

        void Append(CdiContainerEdits edits, string device)
        {
            env.AddRange(edits.Env);
            foreach (var node in edits.DeviceNodes) nodes.Add(DeviceNodeResolver.Resolve(node, device));
            mounts.AddRange(edits.Mounts);
            hooks.AddRange(edits.Hooks);
            foreach (var gid in edits.AdditionalGids)
                if (gid != 0 && !gids.Contains(gid)) gids.Add(gid);
            intelRdt = edits.IntelRdt ?? intelRdt;
            netDevices.AddRange(edits.NetDevices);
        }

        foreach (var (spec, device) in devices)
        {
            string name = spec.QualifiedName(device.Name);
            injected.Add(new CdiInjectedDevice(name, spec.Path));
            if (specsSeen.Add(spec)) Append(spec.Spec.ContainerEdits, name);
            Append(device.ContainerEdits, name);
        }
        return new CdiInjection
        {
            Devices = injected,
            Env = env,
            DeviceNodes = nodes,
            Mounts = mounts,
            Hooks = hooks,
            AdditionalGids = gids,
            IntelRdt = intelRdt,
            NetDevices = netDevices,
        };
    }
}
