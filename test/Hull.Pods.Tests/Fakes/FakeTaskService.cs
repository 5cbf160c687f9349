using System.Collections.Concurrent;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tasks;

namespace Hull.Pods.Tests.Fakes;

/// <summary>Container processes as a dictionary: created, started, exited, deleted; each step can fail or wait (<see cref="Faults"/>).</summary>
public sealed class FakeTaskService(Faults faults) : ITaskService
{
    private sealed class FakeTask
    {
        public RuntimeStatus Status = RuntimeStatus.Created;
        public readonly TaskCompletionSource<TaskExit> Exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskExit? Recorded; // an exit on disk that no wait has reported yet
    }

    private readonly ConcurrentDictionary<string, FakeTask> _tasks = new(StringComparer.Ordinal);

    /// <summary>Tasks that exist (created and not deleted).</summary>
    public IReadOnlyCollection<string> Live => _tasks.Keys.ToList();

    /// <summary>What a restarted hulld finds for a task id (see <see cref="RecoverAsync"/>); by default the live task.</summary>
    public ConcurrentDictionary<string, TaskRecovery> AfterRestart { get; } = new(StringComparer.Ordinal);

    public async Task<TaskInfo> CreateAsync(TaskCreateRequest request, CancellationToken cancellationToken = default)
    {
        await faults.StepAsync("task.create").ConfigureAwait(false);
        if (!_tasks.TryAdd(request.Id, new FakeTask())) throw new HullException(ErrorKind.AlreadyExists, $"task \"{request.Id}\" exists");
        return new TaskInfo(request.Id, 4242, 4241, request.BundlePath, request.LogPath, DateTimeOffset.UtcNow);
    }

    public async Task StartAsync(string id, CancellationToken cancellationToken = default)
    {
        await faults.StepAsync("task.start").ConfigureAwait(false);
        Get(id).Status = RuntimeStatus.Running;
    }

    public Task KillAsync(string id, int signal, bool all = false, CancellationToken cancellationToken = default)
    {
        Exit(id, 128 + signal);
        return Task.CompletedTask;
    }

    /// <summary>Makes the task exit as if its process ended with <paramref name="code"/>.</summary>
    public void Exit(string id, int code)
    {
        var task = Get(id);
        task.Status = RuntimeStatus.Stopped;
        task.Exit.TrySetResult(new TaskExit(code, DateTimeOffset.UtcNow, false));
    }

    /// <summary>The process has ended and its exit is on disk, but no <see cref="WaitAsync"/> has returned it yet.</summary>
    public void ExitUnseen(string id, int code) => Get(id).Recorded = new TaskExit(code, DateTimeOffset.UtcNow, false);

    public Task<TaskExit> WaitAsync(string id, CancellationToken cancellationToken = default) => Get(id).Exit.Task.WaitAsync(cancellationToken);

    public TaskExit? TryGetExit(string id) =>
        !_tasks.TryGetValue(id, out var t) ? null : t.Exit.Task.IsCompleted ? t.Exit.Task.Result : t.Recorded;

    public Task<TaskExit> StopAsync(string id, TimeSpan timeout, int signal = Signals.SIGTERM, CancellationToken cancellationToken = default)
    {
        Exit(id, 128 + Signals.SIGKILL);
        return Get(id).Exit.Task;
    }

    public Task<TaskState> StateAsync(string id, CancellationToken cancellationToken = default)
    {
        var task = Get(id);
        return Task.FromResult(new TaskState(id, task.Status, 4242, TryGetExit(id)));
    }

    /// <summary>Calls of <see cref="DeleteAsync"/>, and those that found a task (the real ones run the runtime for those only).</summary>
    public int DeleteCalls, Deletes;

    public async Task DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref DeleteCalls);
        await faults.StepAsync("task.delete").ConfigureAwait(false);
        if (_tasks.TryRemove(id, out _)) Interlocked.Increment(ref Deletes);
    }

    public Task<ExecSyncResult> ExecSyncAsync(string id, IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Task.FromResult(new ExecSyncResult(0, [], [], false, false));

    public Task UpdateResourcesAsync(string id, TaskResources resources, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public CgroupStats GetStats(string id) => throw new HullException(ErrorKind.FailedPrecondition, "the fake has no stats");

    public Task ReopenLogAsync(string id, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task<TaskRecovery> RecoverAsync(string id, CancellationToken cancellationToken = default)
    {
        if (AfterRestart.TryGetValue(id, out var recovery)) return Task.FromResult(recovery);
        var task = Get(id);
        return Task.FromResult(new TaskRecovery(id, task.Status, 4242, 4241, true, TryGetExit(id)));
    }

    private FakeTask Get(string id) =>
        _tasks.TryGetValue(id, out var task) ? task : throw new HullException(ErrorKind.NotFound, $"task \"{id}\" not found");
}
