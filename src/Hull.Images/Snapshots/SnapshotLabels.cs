using Hull.Core;
using Hull.Linux.Namespaces;

namespace Hull.Images.Snapshots;

/// <summary>
/// containerd's snapshot labels for user-namespaced containers: a container's snapshot prepared with
/// <see cref="UidMapping"/> and <see cref="GidMapping"/> (<c>container:host:size</c>, root mapped) is owned, and mounts,
/// as the mapped root sees it: its upper directory belongs to the mapped root and its layers are idmapped.
/// </summary>
public static class SnapshotLabels
{
    public const string UidMapping = "containerd.io/snapshot/uidmapping";
    public const string GidMapping = "containerd.io/snapshot/gidmapping";
    /// <summary>Set by the overlayfs snapshotter on a snapshot whose parents were copied into it with shifted owners (slow_chown).</summary>
    public const string ChownCopy = "io.hull.snapshot/chown-copy";

    /// <summary>The labels that ask for a snapshot owned through these mappings.</summary>
    public static Dictionary<string, string> IdMapped(string uidMapping, string gidMapping) => new(StringComparer.Ordinal)
    {
        [UidMapping] = uidMapping,
        [GidMapping] = gidMapping,
    };

    /// <summary>The id shift the labels ask for; null when they ask for none. InvalidArgument for a malformed or partial pair.</summary>
    internal static IdShift? ShiftOf(IReadOnlyDictionary<string, string>? labels)
    {
        string? uid = labels?.GetValueOrDefault(UidMapping), gid = labels?.GetValueOrDefault(GidMapping);
        if (uid is null && gid is null) return null;
        if (uid is null || gid is null)
            throw new HullException(ErrorKind.InvalidArgument, $"snapshot labels {UidMapping} and {GidMapping} go together; only one was given");
        IdMapping Parse(string label, string value) => IdMapping.TryParse(value) is { Size: > 0 } m ? m
            : throw new HullException(ErrorKind.InvalidArgument, $"snapshot label {label}=\"{value}\" is not container:host:size");
        return new IdShift(Parse(UidMapping, uid), Parse(GidMapping, gid));
    }
}

/// <summary>Ids on disk as a mapped root sees them: what an idmapped mount shows, and what a chown copy writes.</summary>
internal sealed record IdShift(IdMapping UidMap, IdMapping GidMap)
{
    /// <summary>The kernel's overflow id, which an idmapped mount shows for an id its mapping does not cover.</summary>
    private const uint Overflow = 65534;

    public uint Uid(uint id) => UidMap.ToHost(id) ?? Overflow;

    public uint Gid(uint id) => GidMap.ToHost(id) ?? Overflow;
}
