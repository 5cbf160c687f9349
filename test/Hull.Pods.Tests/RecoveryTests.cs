using Hull.Core;
using Hull.Pods.Stores;
using Hull.Pods.Tests.Fakes;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests;

/// <summary>What a restarted hulld makes of the store: the real managers recover rows a crash left behind.</summary>
public sealed class RecoveryTests : IDisposable
{
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public async Task Running_pods_and_containers_come_back_as_they_were()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Containers.StartAsync(id, default);

        await _node.RestartAsync();

        Assert.Equal(SandboxState.Ready, Assert.Single(_node.Pods.List()).State);
        Assert.Equal(ContainerState.Running, _node.Containers.Status(id).State);
        // The name is still taken.
        await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default));
    }

    [Fact]
    public async Task A_pod_row_caught_in_creating_is_undone()
    {
        var spec = TestLifecycle.PodSpec();
        // hulld died inside RunPodSandbox: the row says creating, the sandboxer had begun.
        await new SandboxStore(_node.Metadata).PutAsync(new SandboxRecord(spec,
            new SandboxInstance { Id = spec.Id, CreatedAt = DateTimeOffset.UtcNow, Sandboxer = FakeSandboxer.SandboxerName, State = SandboxState.Creating },
            SandboxState.Creating, DateTimeOffset.UtcNow, null), default);

        await _node.RestartAsync();

        Assert.Empty(_node.Pods.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
        Assert.Contains(spec.Id, _node.Sandboxer.ShutDown);
        // Its name is free again.
        await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
    }

    [Fact]
    public async Task A_container_row_caught_in_creating_is_undone_with_its_snapshot_and_bundle()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        _node.Faults.Block("task.create");
        var create = _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Faults.ReachedAsync("task.create");
        // "kill -9" here: the row says creating, the snapshot and bundle exist; a new hulld starts.
        Assert.Equal(1, (await _node.RowsAsync()).Containers);
        Assert.Single(_node.Images.Snapshots);

        await _node.RestartAsync();

        Assert.Empty(_node.Containers.List());
        Assert.Equal(0, (await _node.RowsAsync()).Containers);
        Assert.Empty(_node.Images.Snapshots);
        Assert.Empty(_node.Files.Bundles);
        // The old hulld's call is moot (that process is gone); let it end so the test leaves no task behind.
        _node.Faults.Release("task.create");
        await create.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task Of_two_rows_holding_one_pod_name_the_newest_is_kept_and_the_stale_one_torn_down()
    {
        var store = new SandboxStore(_node.Metadata);
        var older = TestLifecycle.PodSpec("web");
        var newer = TestLifecycle.PodSpec("web");
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-5);
        foreach (var (spec, at) in new[] { (older, t0), (newer, t0.AddMinutes(1)) })
        {
            await _node.Sandboxer.CreateAsync(spec, default);
            await store.PutAsync(new SandboxRecord(spec,
                new SandboxInstance { Id = spec.Id, CreatedAt = at, Sandboxer = FakeSandboxer.SandboxerName, State = SandboxState.Ready },
                SandboxState.Ready, at, null), default);
        }

        await _node.RestartAsync(); // must not refuse to start

        var kept = Assert.Single(_node.Pods.List());
        Assert.Equal(newer.Id, kept.Id);
        Assert.Contains(older.Id, _node.Sandboxer.ShutDown);
        Assert.Equal((1, 0), await _node.RowsAsync());
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.RunAsync(TestLifecycle.PodSpec("web"), default));
        Assert.Contains($"reserved for \"{newer.Id}\"", e.Message);
    }

    [Fact]
    public async Task A_container_that_exited_while_hulld_was_down_comes_back_exited_with_its_code()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Containers.StartAsync(id, default);
        _node.Containers.Shutdown(); // hulld stops watching: it is down
        _node.Sandboxer.TaskService.AfterRestart[id] = new Runtime.Tasks.TaskRecovery(id, Runtime.Tasks.RuntimeStatus.Stopped, 0, 0, false,
            new Runtime.Tasks.TaskExit(3, DateTimeOffset.UtcNow, false));

        await _node.RestartAsync();

        var record = _node.Containers.Status(id);
        Assert.Equal(ContainerState.Exited, record.State);
        Assert.Equal(3, record.ExitCode);
    }
}
