namespace Hull.Images.Gc;

/// <summary>
/// Protects content and snapshots that an operation is still building (a pull) from garbage
/// collection. Leases live in memory: they guard work of this daemon run only, so a crash releases
/// them all and the next collection removes what the interrupted work left half-done.
/// </summary>
public sealed class LeaseManager
{
    private readonly HashSet<Lease> _leases = new();

    public Lease Create(string purpose)
    {
        var lease = new Lease(this, purpose);
        lock (_leases) _leases.Add(lease);
        return lease;
    }

    internal void Release(Lease lease)
    {
        lock (_leases) _leases.Remove(lease);
    }

    /// <summary>Every leased digest and chain ID, read at mark time.</summary>
    internal (HashSet<string> Content, HashSet<string> Chains) Snapshot()
    {
        var content = new HashSet<string>(StringComparer.Ordinal);
        var chains = new HashSet<string>(StringComparer.Ordinal);
        lock (_leases)
        {
            foreach (var lease in _leases) lease.CopyTo(content, chains);
        }
        return (content, chains);
    }
}

/// <summary>
/// Resources one operation holds. Add a resource before creating it: a collection that sees the
/// resource on disk then also sees the lease. To rely on a resource that already exists, add it and then
/// call <see cref="GarbageCollector.WaitForRunningCollectionAsync"/> before checking that it is there.
/// </summary>
public sealed class Lease : IDisposable
{
    private readonly LeaseManager _owner;
    private readonly HashSet<string> _content = new(StringComparer.Ordinal);
    private readonly HashSet<string> _chains = new(StringComparer.Ordinal);

    internal Lease(LeaseManager owner, string purpose)
    {
        _owner = owner;
        Purpose = purpose;
    }

    public string Purpose { get; }

    public void AddContent(string digest)
    {
        lock (_content) _content.Add(digest);
    }

    /// <summary>A committed snapshot by chain ID, and the extraction snapshots building it.</summary>
    public void AddChain(string chainId)
    {
        lock (_content) _chains.Add(chainId);
    }

    internal void CopyTo(HashSet<string> content, HashSet<string> chains)
    {
        lock (_content)
        {
            content.UnionWith(_content);
            chains.UnionWith(_chains);
        }
    }

    public void Dispose() => _owner.Release(this);
}
