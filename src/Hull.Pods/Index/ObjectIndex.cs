using System.Collections.Concurrent;
using Hull.Core;

namespace Hull.Pods.Index;

/// <summary>What the in-memory index needs of a record.</summary>
public interface IIndexedRecord
{
    string Id { get; }
    DateTimeOffset CreatedAt { get; }
}

/// <summary>
/// The in-memory index of one kind of object (pod sandboxes, containers): each object has its own lock, lookups take a
/// full id or a unique id prefix (containerd's truncindex), and listing reads a snapshot without taking any lock, so the
/// kubelet's once-a-second lists never wait on a busy object. The store (SQLite) is the truth on disk; this is the truth
/// in memory, rebuilt from the store at start.
/// </summary>
public sealed class ObjectIndex<T>(string kind) where T : class, IIndexedRecord
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>One object: its current record, its lock, and whether it is going away.</summary>
    public sealed class Entry(T record)
    {
        private volatile T _record = record;

        public T Record
        {
            get => _record;
            set => _record = value;
        }

        /// <summary>Held by whatever changes the object (create, start, stop, remove, update).</summary>
        public SemaphoreSlim Lock { get; } = new(1, 1);

        /// <summary>Set (under <see cref="Lock"/>) once the object was removed; a waiter that gets the lock afterwards does nothing.</summary>
        public bool Removed { get; set; }

        /// <summary>No new work may begin on the object (a pod being stopped or removed takes no new containers).</summary>
        public volatile bool Closing;

        public string Id => _record.Id;

        /// <summary>Runs <paramref name="work"/> holding the object's lock.</summary>
        public async Task<TResult> LockedAsync<TResult>(Func<Task<TResult>> work, CancellationToken cancellationToken)
        {
            await Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await work().ConfigureAwait(false);
            }
            finally
            {
                Lock.Release();
            }
        }

        public Task LockedAsync(Func<Task> work, CancellationToken cancellationToken) =>
            LockedAsync(async () => { await work().ConfigureAwait(false); return true; }, cancellationToken);
    }

    /// <summary>"pod sandbox" or "container": how errors name the objects.</summary>
    public string Kind { get; } = kind;

    public int Count => _entries.Count;

    /// <summary>Adds a new object; AlreadyExists if its id is taken.</summary>
    public Entry Add(T record)
    {
        var entry = new Entry(record);
        if (!_entries.TryAdd(record.Id, entry))
            throw new HullException(ErrorKind.AlreadyExists, $"{Kind} \"{record.Id}\" already exists");
        return entry;
    }

    /// <summary>
    /// Adds a new object with its lock already held by the caller, so nothing that finds it in the index can act on it
    /// before the caller is done (a create in flight). The caller releases <see cref="Entry.Lock"/>.
    /// </summary>
    public Entry AddLocked(T record)
    {
        var entry = new Entry(record);
        entry.Lock.Wait(0);
        if (!_entries.TryAdd(record.Id, entry))
            throw new HullException(ErrorKind.AlreadyExists, $"{Kind} \"{record.Id}\" already exists");
        return entry;
    }

    public void Remove(string id) => _entries.TryRemove(id, out _);

    /// <summary>By full id, or by a unique id prefix; NotFound when there is none.</summary>
    public Entry Find(string idOrPrefix) =>
        TryFind(idOrPrefix) ?? throw new HullException(ErrorKind.NotFound, $"{Kind} \"{idOrPrefix}\" not found");

    /// <summary>By full id, or by a unique id prefix; null when there is none. An empty id or an ambiguous prefix is InvalidArgument.</summary>
    public Entry? TryFind(string idOrPrefix)
    {
        if (string.IsNullOrEmpty(idOrPrefix)) throw new HullException(ErrorKind.InvalidArgument, $"a {Kind} id is required");
        if (_entries.TryGetValue(idOrPrefix, out var entry)) return entry;
        Entry? found = null;
        foreach (var (id, e) in _entries)
        {
            if (!id.StartsWith(idOrPrefix, StringComparison.Ordinal)) continue;
            if (found is not null) throw new HullException(ErrorKind.InvalidArgument, $"{Kind} id prefix \"{idOrPrefix}\" is ambiguous");
            found = e;
        }
        return found;
    }

    /// <summary>The record with exactly this id, or null.</summary>
    public T? Get(string id) => _entries.TryGetValue(id, out var entry) ? entry.Record : null;

    /// <summary>A snapshot of the records that match, oldest first; never waits on an object.</summary>
    public IReadOnlyList<T> List(Func<T, bool>? match = null)
    {
        var result = new List<T>(_entries.Count);
        foreach (var entry in _entries.Values)
        {
            var record = entry.Record;
            if (match is null || match(record)) result.Add(record);
        }
        result.Sort(static (a, b) => a.CreatedAt.CompareTo(b.CreatedAt));
        return result;
    }

    /// <summary>The entries that match, for work that must lock each one (stopping a pod's containers).</summary>
    public IReadOnlyList<Entry> Entries(Func<T, bool> match) => _entries.Values.Where(e => match(e.Record)).ToList();
}
