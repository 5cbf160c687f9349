using System.Security.Cryptography;

namespace Hull.Streaming;

/// <summary>
/// Single-use tokens for streaming URLs: random, URL-safe, valid for a limited time, at most a
/// fixed number outstanding (kubelet's streaming request cache).
/// </summary>
public sealed class StreamingRequestCache
{
    private readonly Dictionary<string, (StreamingRequest Request, DateTimeOffset Expires)> _entries = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private readonly TimeProvider _time;

    public StreamingRequestCache(TimeSpan ttl, int maxInFlight, TimeProvider? time = null)
    {
        Ttl = ttl;
        MaxInFlight = maxInFlight;
        _time = time ?? TimeProvider.System;
    }

    public TimeSpan Ttl { get; }
    public int MaxInFlight { get; }

    /// <summary>Stores the request and returns its token. Throws <see cref="StreamingRequestLimitException"/> when too many are outstanding.</summary>
    public string Insert(StreamingRequest request)
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (_entries.Count >= MaxInFlight) Evict(now);
            if (_entries.Count >= MaxInFlight)
                throw new StreamingRequestLimitException(MaxInFlight);
            string token;
            do token = NewToken(); while (_entries.ContainsKey(token));
            _entries[token] = (request, now + Ttl);
            return token;
        }
    }

    /// <summary>Takes the request out of the cache; false when the token is unknown, used, or expired.</summary>
    public bool TryConsume(string token, out StreamingRequest? request)
    {
        lock (_lock)
        {
            request = null;
            if (!_entries.Remove(token, out var entry)) return false;
            if (entry.Expires <= _time.GetUtcNow()) return false;
            request = entry.Request;
            return true;
        }
    }

    public int Count { get { lock (_lock) return _entries.Count; } }

    private void Evict(DateTimeOffset now)
    {
        foreach (var (k, v) in _entries.ToArray())
            if (v.Expires <= now) _entries.Remove(k);
    }

    private static string NewToken()
    {
        Span<byte> b = stackalloc byte[12];
        RandomNumberGenerator.Fill(b);
        return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}

/// <summary>Too many streaming URLs are outstanding; the CRI layer answers ResourceExhausted, as the kubelet's cache does.</summary>
public sealed class StreamingRequestLimitException(int limit)
    : Exception($"maximum number of in-flight streaming requests ({limit}) exceeded")
{
    public int Limit { get; } = limit;
}
