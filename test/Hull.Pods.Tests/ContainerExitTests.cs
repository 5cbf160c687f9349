using Hull.Core;
using Hull.Pods.Stores;
using Hull.Pods.Tests.Fakes;

namespace Hull.Pods.Tests;

/// <summary>
/// At a container's exit its task is deleted, as containerd does, so RemoveContainer (which a kubelet sends much later)
/// has no runtime work left; a delete that fails then is done by RemoveContainer.
/// </summary>
public sealed class ContainerExitTests : IDisposable
{
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    private FakeTaskService Tasks => _node.Sandboxer.TaskService;

    private async Task<string> RunningContainerAsync()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Containers.StartAsync(id, default);
        Assert.Contains(id, Tasks.Live);
        return id;
    }

    [Fact]
    public async Task A_container_that_exits_has_its_task_deleted_and_keeps_its_status_until_removed()
    {
        var id = await RunningContainerAsync();

        Tasks.Exit(id, 3);

        await TestLifecycle.EventuallyAsync(() => !Tasks.Live.Contains(id), "the task's delete");
        var record = _node.Containers.Status(id);
        Assert.Equal((ContainerState.Exited, 3), (record.State, record.ExitCode));
        // The fake's stats throw: an exited container's come from no task.
        var (cgroup, writableBytes, _) = await _node.Containers.StatsAsync(id, default);
        Assert.Equal(0UL, cgroup.MemoryWorkingSetBytes);
        Assert.Equal(4096, writableBytes);
        await _node.Containers.RemoveAsync(id, default);
        Assert.Equal(1, Tasks.Deletes);
        Assert.Empty(_node.Containers.List());
    }

    [Fact]
    public async Task ContainerStatus_reports_an_exit_its_task_has_before_the_watcher_has_stored_it()
    {
        // critest polls ContainerStatus a millisecond after StartContainer returns; the stored exit comes a few ms later.
        var id = await RunningContainerAsync();

        Tasks.ExitUnseen(id, 7);

        var record = _node.Containers.Status(id);
        Assert.Equal((ContainerState.Exited, 7, "Error"), (record.State, record.ExitCode, record.Reason));
        Assert.True(record.FinishedAt >= record.StartedAt);
        Assert.Equal(ContainerState.Running, Assert.Single(_node.Containers.List()).State); // what is stored, until the watcher has it
        Tasks.Exit(id, 7);
        await TestLifecycle.EventuallyAsync(() => _node.Containers.List().Single().State == ContainerState.Exited, "the stored exit");
        Assert.Equal(7, _node.Containers.List().Single().ExitCode);
    }

    [Fact]
    public async Task A_stopped_container_has_its_task_deleted_too()
    {
        var id = await RunningContainerAsync();

        await _node.Containers.StopAsync(id, TimeSpan.Zero, default);

        await TestLifecycle.EventuallyAsync(() => !Tasks.Live.Contains(id), "the task's delete");
        Assert.Equal(ContainerState.Exited, _node.Containers.Status(id).State);
    }

    [Fact]
    public async Task A_delete_that_fails_at_the_exit_is_done_by_RemoveContainer()
    {
        var id = await RunningContainerAsync();
        _node.Faults.Fail("task.delete");

        Tasks.Exit(id, 0);

        await TestLifecycle.EventuallyAsync(() => Tasks.DeleteCalls == 1, "the delete at the exit");
        Assert.Equal(ContainerState.Exited, _node.Containers.Status(id).State);
        Assert.Contains(id, Tasks.Live);
        _node.Faults.Clear("task.delete");
        await _node.Containers.RemoveAsync(id, default);
        Assert.DoesNotContain(id, Tasks.Live);
        Assert.Equal((1, 0), await _node.RowsAsync());
    }
}
