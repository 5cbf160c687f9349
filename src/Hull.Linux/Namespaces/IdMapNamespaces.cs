namespace Hull.Linux.Namespaces;

/// <summary>
/// The user namespaces a batch of idmapped mounts takes its mappings from: one holder process per mapping, started on
/// first use and ended on dispose. Without it each idmapped mount clones a holder of its own (a container's pod-file binds
/// would clone one each).
/// </summary>
public sealed class IdMapNamespaces : IDisposable
{
    private readonly Dictionary<(IdMapping Uid, IdMapping Gid), NamespaceHolder> _holders = [];

    public NamespaceHolder For(IdMapping uid, IdMapping gid)
    {
        if (!_holders.TryGetValue((uid, gid), out var holder)) _holders[(uid, gid)] = holder = NamespaceHolder.Start([uid], [gid]);
        return holder;
    }

    public void Dispose()
    {
        foreach (var holder in _holders.Values) holder.Dispose();
        _holders.Clear();
    }
}
