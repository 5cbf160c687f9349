using Microsoft.Win32.SafeHandles;

namespace Hull.Linux.Namespaces;

/// <summary>A user namespace that exists already (a pod's, pinned at <see cref="Path"/>) and the one mapping it was made with.</summary>
public sealed record PinnedUserNamespace(string Path, IdMapping Uid, IdMapping Gid);

/// <summary>
/// The user namespaces a batch of idmapped mounts takes its mappings from. A mapping that <paramref name="pinned"/> has is
/// taken from that namespace, opened from its pin: no process is made. Any other mapping (a mount's own uidMappings) gets
/// one holder process, started on first use and ended on dispose, shared by every mount of the batch that asks for it.
/// </summary>
public sealed class IdMapNamespaces(PinnedUserNamespace? pinned = null) : IDisposable
{
    private readonly Dictionary<(IdMapping Uid, IdMapping Gid), NamespaceHolder> _holders = [];

    /// <summary>A descriptor of a user namespace with exactly these mappings, for mount_setattr(MOUNT_ATTR_IDMAP); the caller disposes it.</summary>
    public SafeFileHandle Open(IdMapping uid, IdMapping gid)
    {
        // A pin that is gone (the pod was removed under us) is no namespace: a holder still gives the right mapping.
        if (pinned is { } p && p.Uid == uid && p.Gid == gid && LinuxNamespaces.IsNamespace(p.Path)) return LinuxNamespaces.Open(p.Path);
        if (!_holders.TryGetValue((uid, gid), out var holder)) _holders[(uid, gid)] = holder = NamespaceHolder.Start([uid], [gid]);
        return holder.OpenUserNamespace();
    }

    public void Dispose()
    {
        foreach (var holder in _holders.Values) holder.Dispose();
        _holders.Clear();
    }
}
