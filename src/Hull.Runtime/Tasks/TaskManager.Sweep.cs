using System.Globalization;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Processes;
using Microsoft.Extensions.Logging;

namespace Hull.Runtime.Tasks;

public sealed partial class TaskManager
{
    /// <summary>
    /// At start, after recovery: removes the tasks no pod or container row owns — what a kill -9 of hulld between
    /// making a task directory (or runtime state) and persisting its row leaves. For each: its conmon and the runtime
    /// conmon was running are killed, its init is killed, <c>runc delete --force</c> removes the runtime state and
    /// cgroup, and its files are deleted. Runtime state under the handler's root is swept only when the root is Hull's
    /// own (a shared root may hold other managers' containers). Each removal is logged. Returns the ids swept.
    /// </summary>
    /// <param name="owned">Every id a pod (its infra task) or container row in the store owns.</param>
    public async Task<IReadOnlyList<string>> SweepUnownedAsync(IReadOnlySet<string> owned, CancellationToken cancellationToken = default)
    {
        var candidates = new SortedSet<string>(SubdirectoryNames(Paths.ContainersDirectory), StringComparer.Ordinal);
        if (_options.RuntimeRoot is not { Length: > 0 }) candidates.UnionWith(SubdirectoryNames(_runc.Root));
        var swept = new List<string>();
        foreach (var id in candidates)
        {
            if (owned.Contains(id) || _tasks.ContainsKey(id) || _creating.ContainsKey(id)) continue;
            try
            {
                KillRecordedProcesses(id);
                await _runc.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
                RemoveConmonFiles(id, bundle: null);
                if (Directory.Exists(Paths.TaskDirectory(id))) Directory.Delete(Paths.TaskDirectory(id), recursive: true);
                foreach (var exec in Directory.EnumerateDirectories(Paths.ExecDirectory, id + "-*")) Directory.Delete(exec, recursive: true);
                _logger.LogWarning("removed task {Id}, which no pod or container owns (left by a crash?)", id);
                swept.Add(id);
            }
            catch (Exception e) when (e is HullException or IOException or UnauthorizedAccessException or SyscallException)
            {
                _logger.LogError("cannot remove task {Id}, which no pod or container owns: {Error}", id, e.Message);
            }
        }
        return swept;
    }

    /// <summary>
    /// Kills the conmon of an unowned task (the pid task.json records, with its start time, else conmon's pid file if
    /// that pid is a conmon), the runtime it may still be running, and the container init task.json records.
    /// </summary>
    private void KillRecordedProcesses(string id)
    {
        var record = TaskRecord.Load(Paths.RecordFile(id));
        var conmon = record is not null
            ? ProcessInfo.TryRead(record.ConmonPid) is { } c && (record.ConmonStartTime == 0 || c.StartTime == record.ConmonStartTime) ? c : null
            : ReadPidFile(Paths.ConmonPidFile(id)) is { } pid ? ProcessInfo.TryRead(pid) : null;
        if (conmon is { Command: "conmon", IsZombie: false })
        {
            // conmon's children (a runc create still in flight) first, so none of them outlives it and writes state later.
            foreach (var child in ChildrenOf(conmon.Pid)) Signals.TrySend(child, Signals.SIGKILL);
            Signals.TrySend(conmon.Pid, Signals.SIGKILL);
            _logger.LogWarning("killed conmon {Pid} of task {Id}, which no pod or container owns", conmon.Pid, id);
        }
        if (record is not null && ProcessInfo.IsAlive(record.Pid, NonZero(record.PidStartTime)))
        {
            Signals.TrySend(record.Pid, Signals.SIGKILL);
            _logger.LogWarning("killed init {Pid} of task {Id}, which no pod or container owns", record.Pid, id);
        }
    }

    private static IEnumerable<int> ChildrenOf(int parent)
    {
        foreach (var dir in SubdirectoryNames("/proc"))
            if (int.TryParse(dir, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && ProcessInfo.TryRead(pid) is { } info && info.ParentPid == parent)
                yield return pid;
    }

    private static IEnumerable<string> SubdirectoryNames(string path) =>
        Directory.Exists(path) ? Directory.EnumerateDirectories(path).Select(Path.GetFileName).OfType<string>() : [];
}
