namespace Hull.Images.Content;

/// <summary>One async mutex per key, created on demand and dropped when nobody holds or waits for it.</summary>
internal sealed class KeyedAsyncLock
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed class Entry
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public int Users; // holders + waiters, guarded by _entries
    }

    public async Task<IDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var entry = Enter(key);
        try
        {
            await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Leave(key, entry, release: false);
            throw;
        }
        return new Holder(this, key, entry);
    }

    /// <summary>Takes the lock only if it is free right now.</summary>
    public IDisposable? TryAcquire(string key)
    {
        var entry = Enter(key);
        if (entry.Gate.Wait(0)) return new Holder(this, key, entry);
        Leave(key, entry, release: false);
        return null;
    }

    public bool IsHeld(string key)
    {
        lock (_entries) return _entries.TryGetValue(key, out var entry) && entry.Gate.CurrentCount == 0;
    }

    private Entry Enter(string key)
    {
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out var entry)) _entries[key] = entry = new Entry();
            entry.Users++;
            return entry;
        }
    }

    private void Leave(string key, Entry entry, bool release)
    {
        lock (_entries)
        {
            if (release) entry.Gate.Release();
            if (--entry.Users == 0) _entries.Remove(key);
        }
    }

    private sealed class Holder(KeyedAsyncLock owner, string key, Entry entry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) owner.Leave(key, entry, release: true);
        }
    }
}
