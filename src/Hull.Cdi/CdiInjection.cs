using System.Globalization;
using System.Text;

namespace Hull.Cdi;

/// <summary>A device node ready for the OCI spec: the host node's type and numbers filled in where the spec left them out.</summary>
/// <param name="Path">The path in the container.</param>
/// <param name="HostPath">The node on the host it stands for.</param>
/// <param name="Type">"b", "c", "u" or "p".</param>
/// <param name="CgroupAccess">What the device cgroup rule allows ("rwm" unless the spec says otherwise; empty for "none").</param>
public sealed record CdiResolvedDeviceNode(string Path, string HostPath, string Type, long Major, long Minor, uint? FileMode,
    string CgroupAccess, uint? Uid, uint? Gid)
{
    /// <summary>Character and block devices get a device cgroup rule; FIFOs do not.</summary>
    public bool NeedsCgroupRule => Type is "b" or "c";
}

/// <summary>A device that was injected, with the spec file that defined it.</summary>
public sealed record CdiInjectedDevice(string Name, string SpecFile);

/// <summary>
/// Everything the requested devices add to a container, in the reference's order: for each device in request order, its
/// spec's edits (the first time a device of that spec comes up) and then the device's own. Applied to an OCI spec by
/// Hull.Runtime's CdiEdits.
/// </summary>
public sealed record CdiInjection
{
    public static CdiInjection None { get; } = new();

    public IReadOnlyList<CdiInjectedDevice> Devices { get; init; } = [];
    public IReadOnlyList<string> Env { get; init; } = [];
    public IReadOnlyList<CdiResolvedDeviceNode> DeviceNodes { get; init; } = [];
    public IReadOnlyList<CdiMount> Mounts { get; init; } = [];
    public IReadOnlyList<CdiHook> Hooks { get; init; } = [];
    /// <summary>Non-zero group IDs, each once.</summary>
    public IReadOnlyList<uint> AdditionalGids { get; init; } = [];
    /// <summary>The last one given wins.</summary>
    public CdiIntelRdt? IntelRdt { get; init; }
    public IReadOnlyList<CdiNetDevice> NetDevices { get; init; } = [];

    public bool IsEmpty => Devices.Count == 0;

    /// <summary>What the injection adds, one edit a line ("env  NAME=value", "device  /dev/x (c 1:3, from /dev/y, rwm)").</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        void Line(string kind, string what) => text.Append(CultureInfo.InvariantCulture, $"{kind,-11}{what}\n");
        foreach (var e in Env) Line("env", e);
        foreach (var d in DeviceNodes)
        {
            string numbers = d.Type == "p" ? "p" : $"{d.Type} {d.Major}:{d.Minor}";
            string owner = d.Uid is null && d.Gid is null ? "" : $", owner {d.Uid?.ToString(CultureInfo.InvariantCulture) ?? "-"}:{d.Gid?.ToString(CultureInfo.InvariantCulture) ?? "-"}";
            string mode = d.FileMode is { } m ? $", mode {Convert.ToString(m, 8)}" : "";
            string access = d.NeedsCgroupRule ? $", cgroup {(d.CgroupAccess.Length == 0 ? "none" : d.CgroupAccess)}" : "";
            Line("device", $"{d.Path} ({numbers}, from {d.HostPath}{mode}{owner}{access})");
        }
        foreach (var m in Mounts)
            Line("mount", $"{m.ContainerPath} from {m.HostPath}{(m.Type.Length > 0 ? $" type {m.Type}" : "")}{(m.Options.Count > 0 ? $" [{string.Join(',', m.Options)}]" : "")}");
        foreach (var h in Hooks)
            Line("hook", $"{h.HookName} {h.Path}{(h.Args.Count > 0 ? $" args [{string.Join(' ', h.Args)}]" : "")}{(h.Timeout is { } t ? $" timeout {t}s" : "")}");
        if (AdditionalGids.Count > 0) Line("groups", string.Join(' ', AdditionalGids));
        if (IntelRdt is { } rdt)
        {
            var parts = new List<string>();
            if (rdt.ClosId.Length > 0) parts.Add($"closID={rdt.ClosId}");
            if (rdt.L3CacheSchema.Length > 0) parts.Add($"l3CacheSchema={rdt.L3CacheSchema}");
            if (rdt.MemBwSchema.Length > 0) parts.Add($"memBwSchema={rdt.MemBwSchema}");
            if (rdt.Schemata is { Count: > 0 } s) parts.Add($"schemata={string.Join(';', s)}");
            if (rdt.EnableMonitoring) parts.Add("enableMonitoring");
            Line("intelRdt", parts.Count == 0 ? "(defaults)" : string.Join(' ', parts));
        }
        foreach (var n in NetDevices) Line("netDevice", $"{n.HostInterfaceName} as {n.Name}");
        return text.ToString();
    }
}
