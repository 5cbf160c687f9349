using System.Collections.Concurrent;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Microsoft.Extensions.Logging;

namespace Hull.Runtime.Tasks;

/// <summary>One conmon + OCI runtime task manager per runtime handler (its binary, root and cgroup driver), made on first use.</summary>
public sealed class TaskManagers(TaskOptions defaults, ILoggerFactory loggers) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<TaskManager>> _managers = new(StringComparer.Ordinal);

    public TaskManager For(RuntimeHandler handler) => _managers.GetOrAdd(handler.Name, _ => new Lazy<TaskManager>(() => new TaskManager(defaults with
    {
        RuntimePath = handler.RuntimeBinary,
        RuntimeRoot = handler.RuntimeRoot.Length > 0 ? handler.RuntimeRoot : null,
        SystemdCgroup = handler.CgroupDriver == CgroupDriver.Systemd,
    }, loggers.CreateLogger<TaskManager>()))).Value;

    /// <summary>
    /// At start, after recovery: removes the tasks no row owns (<see cref="TaskManager.SweepUnownedAsync"/>) with the
    /// manager of each of <paramref name="handlers"/>, so runtime state under every handler's root is reached. Returns the ids swept.
    /// </summary>
    public async Task<IReadOnlyList<string>> SweepUnownedAsync(IReadOnlySet<string> owned, IEnumerable<RuntimeHandler> handlers,
        CancellationToken cancellationToken = default)
    {
        var swept = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var handler in handlers)
            swept.UnionWith(await For(handler).SweepUnownedAsync(owned, cancellationToken).ConfigureAwait(false));
        return swept.ToList();
    }

    public void Dispose()
    {
        foreach (var manager in _managers.Values.Where(m => m.IsValueCreated)) manager.Value.Dispose();
    }
}
