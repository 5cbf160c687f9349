using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;

namespace Hull.Runtime.Tasks;

/// <summary>
/// A sandbox's task endpoint: the only way the CRI container code reaches a container's process.
/// For runc pods it is the local conmon + runc <see cref="TaskManager"/>; a microVM sandboxer returns
/// one that reaches its guest agent.
/// </summary>
public interface ITaskService
{
    Task<TaskInfo> CreateAsync(TaskCreateRequest request, CancellationToken cancellationToken = default);
    Task StartAsync(string id, CancellationToken cancellationToken = default);
    Task KillAsync(string id, int signal, bool all = false, CancellationToken cancellationToken = default);
    Task<TaskExit> WaitAsync(string id, CancellationToken cancellationToken = default);
    TaskExit? TryGetExit(string id);
    Task<TaskExit> StopAsync(string id, TimeSpan timeout, int signal = Signals.SIGTERM, CancellationToken cancellationToken = default);
    Task<TaskState> StateAsync(string id, CancellationToken cancellationToken = default);
    Task DeleteAsync(string id, CancellationToken cancellationToken = default);
    Task<ExecSyncResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken = default);
    Task UpdateResourcesAsync(string id, TaskResources resources, CancellationToken cancellationToken = default);
    CgroupStats GetStats(string id);
    Task ReopenLogAsync(string id, CancellationToken cancellationToken = default);
    Task<TaskRecovery> RecoverAsync(string id, CancellationToken cancellationToken = default);
}
