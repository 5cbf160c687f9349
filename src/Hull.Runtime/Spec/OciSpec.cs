using System.Text.Json.Serialization;

namespace Hull.Runtime.Spec;

// The OCI runtime configuration (opencontainers/runtime-spec config.md and config-linux.md), written by
// hand as plain records. Property names are the spec's JSON field names; a null property is left out of
// the JSON, which is how the spec's optional fields ("omitempty" in the Go types) are expressed.

/// <summary>config.json: the whole runtime configuration of one container.</summary>
public sealed record OciSpec
{
    public const string Version = "1.0.2";

    [JsonPropertyName("ociVersion")] public string OciVersion { get; init; } = Version;
    [JsonPropertyName("process")] public OciProcess? Process { get; init; }
    [JsonPropertyName("root")] public OciRoot? Root { get; init; }
    [JsonPropertyName("hostname")] public string? Hostname { get; init; }
    [JsonPropertyName("domainname")] public string? Domainname { get; init; }
    [JsonPropertyName("mounts")] public IReadOnlyList<OciMount>? Mounts { get; init; }
    [JsonPropertyName("hooks")] public OciHooks? Hooks { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("linux")] public OciLinux? Linux { get; init; }
}

public sealed record OciProcess
{
    [JsonPropertyName("terminal")] public bool? Terminal { get; init; }
    [JsonPropertyName("consoleSize")] public OciConsoleSize? ConsoleSize { get; init; }
    [JsonPropertyName("user")] public OciUser User { get; init; } = new();
    [JsonPropertyName("args")] public IReadOnlyList<string>? Args { get; init; }
    [JsonPropertyName("env")] public IReadOnlyList<string>? Env { get; init; }
    [JsonPropertyName("cwd")] public string Cwd { get; init; } = "/";
    [JsonPropertyName("capabilities")] public OciCapabilities? Capabilities { get; init; }
    [JsonPropertyName("rlimits")] public IReadOnlyList<OciRlimit>? Rlimits { get; init; }
    [JsonPropertyName("noNewPrivileges")] public bool? NoNewPrivileges { get; init; }
    [JsonPropertyName("apparmorProfile")] public string? ApparmorProfile { get; init; }
    [JsonPropertyName("oomScoreAdj")] public int? OomScoreAdj { get; init; }
    [JsonPropertyName("selinuxLabel")] public string? SelinuxLabel { get; init; }
}

public sealed record OciConsoleSize(
    [property: JsonPropertyName("height")] uint Height,
    [property: JsonPropertyName("width")] uint Width);

public sealed record OciUser
{
    [JsonPropertyName("uid")] public uint Uid { get; init; }
    [JsonPropertyName("gid")] public uint Gid { get; init; }
    [JsonPropertyName("umask")] public uint? Umask { get; init; }
    [JsonPropertyName("additionalGids")] public IReadOnlyList<uint>? AdditionalGids { get; init; }
    [JsonPropertyName("username")] public string? Username { get; init; }
}

/// <summary>Capability sets; names carry the CAP_ prefix (CAP_CHOWN).</summary>
public sealed record OciCapabilities
{
    [JsonPropertyName("bounding")] public IReadOnlyList<string>? Bounding { get; init; }
    [JsonPropertyName("effective")] public IReadOnlyList<string>? Effective { get; init; }
    [JsonPropertyName("inheritable")] public IReadOnlyList<string>? Inheritable { get; init; }
    [JsonPropertyName("permitted")] public IReadOnlyList<string>? Permitted { get; init; }
    [JsonPropertyName("ambient")] public IReadOnlyList<string>? Ambient { get; init; }
}

public sealed record OciRlimit(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("hard")] ulong Hard,
    [property: JsonPropertyName("soft")] ulong Soft);

public sealed record OciRoot
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("readonly")] public bool? Readonly { get; init; }
}

public sealed record OciMount
{
    [JsonPropertyName("destination")] public required string Destination { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("source")] public string? Source { get; init; }
    [JsonPropertyName("options")] public IReadOnlyList<string>? Options { get; init; }
    [JsonPropertyName("uidMappings")] public IReadOnlyList<OciIdMapping>? UidMappings { get; init; }
    [JsonPropertyName("gidMappings")] public IReadOnlyList<OciIdMapping>? GidMappings { get; init; }

    public override string ToString() =>
        $"{Type} {Source} on {Destination} [{string.Join(',', Options ?? [])}]";
}

public sealed record OciHooks
{
    [JsonPropertyName("prestart")] public IReadOnlyList<OciHook>? Prestart { get; init; }
    [JsonPropertyName("createRuntime")] public IReadOnlyList<OciHook>? CreateRuntime { get; init; }
    [JsonPropertyName("createContainer")] public IReadOnlyList<OciHook>? CreateContainer { get; init; }
    [JsonPropertyName("startContainer")] public IReadOnlyList<OciHook>? StartContainer { get; init; }
    [JsonPropertyName("poststart")] public IReadOnlyList<OciHook>? Poststart { get; init; }
    [JsonPropertyName("poststop")] public IReadOnlyList<OciHook>? Poststop { get; init; }
}

public sealed record OciHook
{
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("args")] public IReadOnlyList<string>? Args { get; init; }
    [JsonPropertyName("env")] public IReadOnlyList<string>? Env { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
}

public sealed record OciLinux
{
    [JsonPropertyName("uidMappings")] public IReadOnlyList<OciIdMapping>? UidMappings { get; init; }
    [JsonPropertyName("gidMappings")] public IReadOnlyList<OciIdMapping>? GidMappings { get; init; }
    [JsonPropertyName("sysctl")] public IReadOnlyDictionary<string, string>? Sysctl { get; init; }
    [JsonPropertyName("resources")] public OciResources? Resources { get; init; }
    [JsonPropertyName("cgroupsPath")] public string? CgroupsPath { get; init; }
    [JsonPropertyName("namespaces")] public IReadOnlyList<OciNamespace>? Namespaces { get; init; }
    [JsonPropertyName("devices")] public IReadOnlyList<OciDevice>? Devices { get; init; }
    [JsonPropertyName("seccomp")] public OciSeccomp? Seccomp { get; init; }
    [JsonPropertyName("rootfsPropagation")] public string? RootfsPropagation { get; init; }
    [JsonPropertyName("maskedPaths")] public IReadOnlyList<string>? MaskedPaths { get; init; }
    [JsonPropertyName("readonlyPaths")] public IReadOnlyList<string>? ReadonlyPaths { get; init; }
    [JsonPropertyName("mountLabel")] public string? MountLabel { get; init; }
    [JsonPropertyName("intelRdt")] public OciIntelRdt? IntelRdt { get; init; }
    /// <summary>Host network interfaces moved into the container, by host name (runtime-spec 1.3).</summary>
    [JsonPropertyName("netDevices")] public IReadOnlyDictionary<string, OciNetDevice>? NetDevices { get; init; }
}

/// <summary>The container's resctrl class of service (Intel RDT).</summary>
public sealed record OciIntelRdt
{
    [JsonPropertyName("closID")] public string? ClosId { get; init; }
    [JsonPropertyName("l3CacheSchema")] public string? L3CacheSchema { get; init; }
    [JsonPropertyName("memBwSchema")] public string? MemBwSchema { get; init; }
    [JsonPropertyName("schemata")] public IReadOnlyList<string>? Schemata { get; init; }
    [JsonPropertyName("enableMonitoring")] public bool? EnableMonitoring { get; init; }
}

/// <summary>The name a moved host network interface gets in the container.</summary>
public sealed record OciNetDevice([property: JsonPropertyName("name")] string? Name);

/// <summary>One range of a user namespace mapping: container IDs [containerID, containerID+size) are host IDs from hostID.</summary>
public sealed record OciIdMapping(
    [property: JsonPropertyName("containerID")] uint ContainerId,
    [property: JsonPropertyName("hostID")] uint HostId,
    [property: JsonPropertyName("size")] uint Size);

/// <summary>A namespace of the container: without a path a new one is created, with a path that one is joined.</summary>
public sealed record OciNamespace
{
    public const string Pid = "pid", Network = "network", Mount = "mount", Ipc = "ipc", Uts = "uts", User = "user", Cgroup = "cgroup";

    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("path")] public string? Path { get; init; }
}

/// <summary>A device node created in the container (type "c", "b", "u" or "p").</summary>
public sealed record OciDevice
{
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("path")] public required string Path { get; init; }
    [JsonPropertyName("major")] public long Major { get; init; }
    [JsonPropertyName("minor")] public long Minor { get; init; }
    [JsonPropertyName("fileMode")] public uint? FileMode { get; init; }
    [JsonPropertyName("uid")] public uint? Uid { get; init; }
    [JsonPropertyName("gid")] public uint? Gid { get; init; }
}

public sealed record OciResources
{
    [JsonPropertyName("devices")] public IReadOnlyList<OciDeviceCgroup>? Devices { get; init; }
    [JsonPropertyName("memory")] public OciMemory? Memory { get; init; }
    [JsonPropertyName("cpu")] public OciCpu? Cpu { get; init; }
    [JsonPropertyName("pids")] public OciPids? Pids { get; init; }
    [JsonPropertyName("hugepageLimits")] public IReadOnlyList<OciHugepageLimit>? HugepageLimits { get; init; }
    [JsonPropertyName("unified")] public IReadOnlyDictionary<string, string>? Unified { get; init; }
}

/// <summary>A device cgroup rule; access is a combination of r, w and m.</summary>
public sealed record OciDeviceCgroup
{
    [JsonPropertyName("allow")] public bool Allow { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("major")] public long? Major { get; init; }
    [JsonPropertyName("minor")] public long? Minor { get; init; }
    [JsonPropertyName("access")] public string? Access { get; init; }
}

public sealed record OciMemory
{
    [JsonPropertyName("limit")] public long? Limit { get; init; }
    [JsonPropertyName("reservation")] public long? Reservation { get; init; }
    /// <summary>Memory plus swap, as in cgroup v1's memory.memsw.limit_in_bytes.</summary>
    [JsonPropertyName("swap")] public long? Swap { get; init; }
    [JsonPropertyName("swappiness")] public ulong? Swappiness { get; init; }
    [JsonPropertyName("disableOOMKiller")] public bool? DisableOomKiller { get; init; }
}

public sealed record OciCpu
{
    [JsonPropertyName("shares")] public ulong? Shares { get; init; }
    [JsonPropertyName("quota")] public long? Quota { get; init; }
    [JsonPropertyName("period")] public ulong? Period { get; init; }
    [JsonPropertyName("realtimeRuntime")] public long? RealtimeRuntime { get; init; }
    [JsonPropertyName("realtimePeriod")] public ulong? RealtimePeriod { get; init; }
    [JsonPropertyName("cpus")] public string? Cpus { get; init; }
    [JsonPropertyName("mems")] public string? Mems { get; init; }
}

public sealed record OciPids([property: JsonPropertyName("limit")] long Limit);

public sealed record OciHugepageLimit(
    [property: JsonPropertyName("pageSize")] string PageSize,
    [property: JsonPropertyName("limit")] ulong Limit);

/// <summary>linux.seccomp: a syscall filter (actions SCMP_ACT_*, architectures SCMP_ARCH_*, operators SCMP_CMP_*).</summary>
public sealed record OciSeccomp
{
    [JsonPropertyName("defaultAction")] public required string DefaultAction { get; init; }
    [JsonPropertyName("defaultErrnoRet")] public uint? DefaultErrnoRet { get; init; }
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; }
    [JsonPropertyName("flags")] public IReadOnlyList<string>? Flags { get; init; }
    [JsonPropertyName("listenerPath")] public string? ListenerPath { get; init; }
    [JsonPropertyName("listenerMetadata")] public string? ListenerMetadata { get; init; }
    [JsonPropertyName("syscalls")] public IReadOnlyList<OciSyscall>? Syscalls { get; init; }
}

public sealed record OciSyscall
{
    [JsonPropertyName("names")] public required IReadOnlyList<string> Names { get; init; }
    [JsonPropertyName("action")] public required string Action { get; init; }
    [JsonPropertyName("errnoRet")] public uint? ErrnoRet { get; init; }
    [JsonPropertyName("args")] public IReadOnlyList<OciSyscallArg>? Args { get; init; }
}

public sealed record OciSyscallArg
{
    [JsonPropertyName("index")] public uint Index { get; init; }
    [JsonPropertyName("value")] public ulong Value { get; init; }
    [JsonPropertyName("valueTwo")] public ulong? ValueTwo { get; init; }
    [JsonPropertyName("op")] public required string Op { get; init; }
}
