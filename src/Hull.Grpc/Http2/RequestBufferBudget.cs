namespace Hull.Grpc.Http2;

/// <summary>
/// Request body bytes buffered by all connections of a server, against <see cref="Http2ServerOptions.MaxBufferedRequestBytes"/>.
/// </summary>
internal sealed class RequestBufferBudget(long limit)
{
    private long _used;

    public long Limit => limit;
    public long Used => Interlocked.Read(ref _used);

    public bool TryReserve(int bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= limit) return true;
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    public void Release(int bytes) => Interlocked.Add(ref _used, -bytes);
}
