namespace Hull.Cdi;

// A CDI spec file as written by a device vendor (cncf-tags/container-device-interface SPEC.md and specs-go/config.go).
// Property names follow the spec's JSON field names; null means the field was absent (or null), which matters where the
// reference implementation tells "absent" from "empty" (intelRdt, schemata).

/// <summary>One CDI spec file: the devices of one vendor/class and the edits every one of them needs.</summary>
public sealed record CdiSpec
{
    public string CdiVersion { get; init; } = "";
    /// <summary>"vendor.com/class".</summary>
    public string Kind { get; init; } = "";
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    public IReadOnlyList<CdiDevice> Devices { get; init; } = [];
    /// <summary>Applied once when any device of this spec is injected.</summary>
    public CdiContainerEdits ContainerEdits { get; init; } = CdiContainerEdits.None;
}

public sealed record CdiDevice
{
    public string Name { get; init; } = "";
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    public CdiContainerEdits ContainerEdits { get; init; } = CdiContainerEdits.None;
}

/// <summary>What a device (or its spec) adds to a container's OCI spec.</summary>
public sealed record CdiContainerEdits
{
    public static CdiContainerEdits None { get; } = new();

    /// <summary>"NAME=value" entries.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    public IReadOnlyList<CdiDeviceNode> DeviceNodes { get; init; } = [];
    public IReadOnlyList<CdiNetDevice> NetDevices { get; init; } = [];
    public IReadOnlyList<CdiHook> Hooks { get; init; } = [];
    public IReadOnlyList<CdiMount> Mounts { get; init; } = [];
    public CdiIntelRdt? IntelRdt { get; init; }
    public IReadOnlyList<uint> AdditionalGids { get; init; } = [];

    /// <summary>No edit at all: valid for a spec, not for a device.</summary>
    public bool IsEmpty => Env.Count == 0 && DeviceNodes.Count == 0 && NetDevices.Count == 0 && Hooks.Count == 0 &&
                           Mounts.Count == 0 && IntelRdt is null && AdditionalGids.Count == 0;
}

/// <summary>A device node as the spec writes it; missing type and numbers are read from the host node when resolved.</summary>
public sealed record CdiDeviceNode
{
    /// <summary>The path in the container.</summary>
    public string Path { get; init; } = "";
    /// <summary>The node on the host; empty means <see cref="Path"/> (added in 0.5.0).</summary>
    public string HostPath { get; init; } = "";
    /// <summary>"b", "c", "u", "p" or empty (from the host node).</summary>
    public string Type { get; init; } = "";
    public long Major { get; init; }
    public long Minor { get; init; }
    public uint? FileMode { get; init; }
    /// <summary>Device cgroup access: a combination of r, w, m; empty means "rwm", "none" means no access.</summary>
    public string Permissions { get; init; } = "";
    public uint? Uid { get; init; }
    public uint? Gid { get; init; }
}

public sealed record CdiMount
{
    public string HostPath { get; init; } = "";
    public string ContainerPath { get; init; } = "";
    public IReadOnlyList<string> Options { get; init; } = [];
    /// <summary>The file system type; empty for a bind mount (added in 0.4.0).</summary>
    public string Type { get; init; } = "";
}

/// <summary>An OCI hook; <see cref="HookName"/> is one of <see cref="CdiHookNames.All"/>.</summary>
public sealed record CdiHook
{
    public string HookName { get; init; } = "";
    public string Path { get; init; } = "";
    public IReadOnlyList<string> Args { get; init; } = [];
    public IReadOnlyList<string> Env { get; init; } = [];
    public int? Timeout { get; init; }
}

/// <summary>linux.intelRdt (added in 0.7.0; <see cref="Schemata"/> and <see cref="EnableMonitoring"/> in 1.1.0).</summary>
public sealed record CdiIntelRdt
{
    public string ClosId { get; init; } = "";
    public string L3CacheSchema { get; init; } = "";
    public string MemBwSchema { get; init; } = "";
    /// <summary>Null when absent; present (even empty) needs cdiVersion 1.1.0.</summary>
    public IReadOnlyList<string>? Schemata { get; init; }
    public bool EnableMonitoring { get; init; }
}

/// <summary>A host network interface moved into the container under <see cref="Name"/> (added in 1.1.0).</summary>
public sealed record CdiNetDevice
{
    public string HostInterfaceName { get; init; } = "";
    public string Name { get; init; } = "";
}

/// <summary>The OCI hook names a CDI hook may use.</summary>
public static class CdiHookNames
{
    public const string Prestart = "prestart", CreateRuntime = "createRuntime", CreateContainer = "createContainer",
        StartContainer = "startContainer", Poststart = "poststart", Poststop = "poststop";

    public static IReadOnlyList<string> All { get; } = [Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop];
}
