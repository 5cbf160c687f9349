using Hull.Core;
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

    /// <summary>
    /// Creates and starts a task in one step, as StartContainer does for the task CreateContainer deferred. A failure
    /// leaves nothing behind. This default is <see cref="CreateThenStartAsync"/>; an endpoint that can do both at once
    /// does (<see cref="TaskManager.RunAsync"/>).
    /// </summary>
    Task<TaskInfo> RunAsync(TaskCreateRequest request, CancellationToken cancellationToken = default) =>
        CreateThenStartAsync(this, request, cancellationToken);

    /// <summary>Create, then start; a start that fails deletes what the create made, and its error is the one thrown.</summary>
    static async Task<TaskInfo> CreateThenStartAsync(ITaskService tasks, TaskCreateRequest request, CancellationToken cancellationToken)
    {
        var info = await tasks.CreateAsync(request, cancellationToken).ConfigureAwait(false);
        try
        {
            await tasks.StartAsync(request.Id, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                await tasks.DeleteAsync(request.Id, CancellationToken.None).ConfigureAwait(false);
            }
            catch (HullException)
            {
                // The start's error is the one the caller needs to see.
            }
            throw;
        }
        return info;
    }

    Task KillAsync(string id, int signal, bool all = false, CancellationToken cancellationToken = default);
    Task<TaskExit> WaitAsync(string id, CancellationToken cancellationToken = default);
    TaskExit? TryGetExit(string id);
    Task<TaskExit> StopAsync(string id, TimeSpan timeout, int signal = Signals.SIGTERM, CancellationToken cancellationToken = default);
    Task<TaskState> StateAsync(string id, CancellationToken cancellationToken = default);
    /// <summary>Kills what still runs and removes the task. Idempotent: a task never made, or deleted already, is no error.</summary>
    Task DeleteAsync(string id, CancellationToken cancellationToken = default);
    Task<ExecSyncResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken = default);
    Task UpdateResourcesAsync(string id, TaskResources resources, CancellationToken cancellationToken = default);
    CgroupStats GetStats(string id);
    Task ReopenLogAsync(string id, CancellationToken cancellationToken = default);
    Task<TaskRecovery> RecoverAsync(string id, CancellationToken cancellationToken = default);
}
