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

    public void Dispose()
    {
        foreach (var manager in _managers.Values.Where(m => m.IsValueCreated)) manager.Value.Dispose();
    }
}
