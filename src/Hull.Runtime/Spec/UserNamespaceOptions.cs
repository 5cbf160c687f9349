using Hull.Core;
using Hull.Linux.Namespaces;

namespace Hull.Runtime.Spec;

/// <summary>CRI's NamespaceMode as it applies to a user namespace: only Pod and Node exist for one.</summary>
public enum UserNamespaceMode
{
    /// <summary>The host's user namespace (a pod with hostUsers: true).</summary>
    Node,
    /// <summary>One user namespace for the whole pod, with the kubelet's mappings.</summary>
    Pod,
    /// <summary>Not supported for user namespaces (CRI says so); rejected.</summary>
    Container,
    /// <summary>Not supported for user namespaces; rejected.</summary>
    Target,
}

/// <summary>
/// CRI's <c>NamespaceOption.userns_options</c>: the pod's (and each of its containers') user namespace and its uid and gid
/// mappings. An absent one means the host's (<see cref="Node"/>), as containerd and the kubelet treat it.
/// </summary>
public sealed record UserNamespaceOptions(UserNamespaceMode Mode, IReadOnlyList<OciIdMapping> Uids, IReadOnlyList<OciIdMapping> Gids)
{
    public static UserNamespaceOptions Node { get; } = new(UserNamespaceMode.Node, [], []);

    /// <summary>A user namespace of the pod's own (mode Pod).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsPod => Mode == UserNamespaceMode.Pod;

    /// <summary>This pod user namespace as pinned at <paramref name="pinPath"/>, for idmapped mounts; null for the host's or without a pin.</summary>
    public PinnedUserNamespace? PinnedAt(string pinPath) =>
        IsPod && pinPath.Length > 0 && Uids is [var uid] && Gids is [var gid]
            ? new PinnedUserNamespace(pinPath, new IdMapping(uid.ContainerId, uid.HostId, uid.Size), new IdMapping(gid.ContainerId, gid.HostId, gid.Size))
            : null;

    /// <summary>
    /// containerd's rules (parseUsernsIDs) plus the checks runc would otherwise fail late on: Pod needs exactly one uid
    /// and one gid mapping, each mapping container id 0 and fitting in 32 bits; Node takes no mappings; Container and
    /// Target are not user-namespace modes. InvalidArgument naming <paramref name="owner"/> otherwise.
    /// </summary>
    public void Validate(string owner)
    {
        switch (Mode)
        {
            case UserNamespaceMode.Node:
                if (Uids.Count != 0 || Gids.Count != 0)
                    throw Invalid(owner, $"user namespace mode NODE takes no mappings, but {Uids.Count} uid and {Gids.Count} gid mappings were given");
                return;
            case UserNamespaceMode.Pod:
                CheckMapping(owner, "uid", Uids);
                CheckMapping(owner, "gid", Gids);
                return;
            default:
                throw Invalid(owner, $"user namespace mode {Mode.ToString().ToUpperInvariant()} is not supported (only POD and NODE are)");
        }
    }

    private static void CheckMapping(string owner, string kind, IReadOnlyList<OciIdMapping> mappings)
    {
        if (mappings.Count != 1)
            throw Invalid(owner, $"user namespace mode POD needs exactly one {kind} mapping, got {mappings.Count}");
        var m = mappings[0];
        if (m.Size == 0) throw Invalid(owner, $"{kind} mapping {Format(m)} has length 0");
        if (m.ContainerId != 0) throw Invalid(owner, $"{kind} mapping {Format(m)} does not map container {kind} 0 (root)");
        // uint.MaxValue is the kernel's "no id" ((uid_t)-1): no mapped range may reach it.
        if ((ulong)m.HostId + m.Size > uint.MaxValue || (ulong)m.ContainerId + m.Size > uint.MaxValue)
            throw Invalid(owner, $"{kind} mapping {Format(m)} runs past the largest id {uint.MaxValue - 1}");
    }

    /// <summary>Same mode and the same mappings in the same order (containerd's sameUsernsConfig).</summary>
    public bool SameAs(UserNamespaceOptions other) =>
        Mode == other.Mode && Uids.SequenceEqual(other.Uids) && Gids.SequenceEqual(other.Gids);

    /// <summary>
    /// A container's userns_options must be its pod's (absent on both, or equal): InvalidArgument naming both otherwise, as
    /// containerd refuses it. A container cannot have a user namespace of its own.
    /// </summary>
    public static void EnsureContainerMatchesPod(UserNamespaceOptions pod, UserNamespaceOptions? container, string containerName, string podId)
    {
        var own = container ?? Node;
        if (!own.SameAs(pod))
            throw new HullException(ErrorKind.InvalidArgument,
                $"container \"{containerName}\": its user namespace ({own}) differs from that of its pod sandbox \"{podId}\" ({pod})");
    }

    public override string ToString() => Mode == UserNamespaceMode.Pod || Uids.Count + Gids.Count > 0
        ? $"{Mode.ToString().ToUpperInvariant()}, uids {string.Join(' ', Uids.Select(Format))}, gids {string.Join(' ', Gids.Select(Format))}"
        : Mode.ToString().ToUpperInvariant();

    /// <summary>containerd's snapshot label form of a mapping, <c>container:host:size</c>.</summary>
    public static string Format(OciIdMapping m) => $"{m.ContainerId}:{m.HostId}:{m.Size}";

    private static HullException Invalid(string owner, string problem) => new(ErrorKind.InvalidArgument, $"{owner}: {problem}");
}
