namespace Hull.Grpc.Http2;

/// <summary>
/// Counts events against a <see cref="RateLimit"/>. Used by one connection's read loop only, so it takes no lock.
/// </summary>
internal struct TokenBucket(RateLimit limit)
{
    private double _tokens = limit.Burst;
    private long _refilledAt = Environment.TickCount64;

    /// <summary>Takes one token; false once the burst is spent faster than the rate refills it.</summary>
    public bool TryTake()
    {
        long now = Environment.TickCount64;
        _tokens = Math.Min(limit.Burst, _tokens + (now - _refilledAt) * limit.PerSecond / 1000);
        _refilledAt = now;
        if (_tokens < 1) return false;
        _tokens--;
        return true;
    }
}
