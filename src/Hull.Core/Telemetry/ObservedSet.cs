namespace Hull.Core.Telemetry;

/// <summary>
/// The live objects an observable gauge reads at scrape time. Held weakly: a gauge must not keep a manager (or a test's
/// manager) alive, and a process normally has one of each.
/// </summary>
public sealed class ObservedSet<T> where T : class
{
    private readonly List<WeakReference<T>> _items = new();

    public void Add(T item)
    {
        lock (_items)
        {
            _items.RemoveAll(r => !r.TryGetTarget(out _));
            _items.Add(new WeakReference<T>(item));
        }
    }

    public IReadOnlyList<T> Live()
    {
        lock (_items) return _items.Select(r => r.TryGetTarget(out var x) ? x : null).OfType<T>().ToArray();
    }
}
