using Hull.Core;
using Hull.Pods.Events;
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
    public async Task What_the_sandboxer_made_reaches_the_row_before_the_pod_is_started_and_its_undo_gets_it()
    {
        var spec = TestLifecycle.PodSpec();
        _node.Faults.Block("sandbox.start");
        var run = _node.Pods.RunAsync(spec, default);
        await _node.Faults.ReachedAsync("sandbox.start");
        // "kill -9" as the infra process starts: the row must already name it, or nothing would stop it.
        var row = Assert.Single(await new SandboxStore(_node.Metadata).ListAsync(default));
        Assert.Equal(SandboxState.Creating, row.State);
        Assert.Equal("infra-" + spec.Id, row.Instance.InfraTaskId);

        await _node.RestartAsync();

        Assert.Equal("infra-" + spec.Id, _node.Sandboxer.Recovered[spec.Id].InfraTaskId);
        Assert.Empty(_node.Pods.List());
        Assert.Contains(spec.Id, _node.Sandboxer.ShutDown);
        Assert.Equal((0, 0), await _node.RowsAsync());
        _node.Faults.Release("sandbox.start");
        await run.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task A_container_row_caught_in_creating_is_undone_with_its_snapshot_and_bundle()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        _node.Faults.Block("spec.write");
        var create = _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Faults.ReachedAsync("spec.write");
        // "kill -9" here: the row says creating, the snapshot and bundle exist; a new hulld starts.
        Assert.Equal(1, (await _node.RowsAsync()).Containers);
        Assert.Single(_node.Images.Snapshots);

        await _node.RestartAsync();

        Assert.Empty(_node.Containers.List());
        Assert.Equal(0, (await _node.RowsAsync()).Containers);
        Assert.Empty(_node.Images.Snapshots);
        Assert.Empty(_node.Files.Bundles);
        // The old hulld's call is moot (that process is gone); let it end so the test leaves no task behind.
        _node.Faults.Release("spec.write");
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
        // Its task goes as at any exit.
        await TestLifecycle.EventuallyAsync(() => !_node.Sandboxer.TaskService.Live.Contains(id), "the task's delete");
        // The kubelet missed the exit: it learns of it when it subscribes to the new hulld.
        using var kubelet = _node.Events.Broadcaster.Subscribe();
        var stopped = Assert.Single(Held(kubelet), e => e.ContainerId == id);
        Assert.Equal(LifecycleEventKind.Stopped, stopped.Kind);
        Assert.Equal(ContainerState.Exited, Assert.Single(stopped.Containers).State);
    }

    [Fact]
    public async Task A_container_started_just_before_hulld_died_comes_back_running_and_watched()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        // StartContainer made the deferred task and runc start succeeded, but hulld was killed before it wrote either:
        // the row says created with its task still to make, and the task runs.
        Assert.Empty(_node.Sandboxer.TaskService.Live);
        await _node.Sandboxer.TaskService.CreateAsync(new Runtime.Tasks.TaskCreateRequest(id, "/bundle", "/log"));
        await _node.Sandboxer.TaskService.StartAsync(id);
        Assert.Equal(ContainerState.Created, (await new ContainerStore(_node.Metadata).ListAsync(default)).Single().State);

        await _node.RestartAsync();

        var record = _node.Containers.Status(id);
        Assert.Equal(ContainerState.Running, record.State);
        Assert.NotNull(record.StartedAt);
        Assert.Equal(ContainerState.Running, (await new ContainerStore(_node.Metadata).ListAsync(default)).Single().State);
        using var kubelet = _node.Events.Broadcaster.Subscribe();
        Assert.Equal(LifecycleEventKind.Started, Assert.Single(Held(kubelet), e => e.ContainerId == id).Kind);

        // Watched: its exit is recorded and reported.
        _node.Sandboxer.TaskService.Exit(id, 7);
        var stopped = await kubelet.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((id, LifecycleEventKind.Stopped), (stopped.ContainerId, stopped.Kind));
        Assert.Equal(7, _node.Containers.Status(id).ExitCode);
    }

    private static List<LifecycleEvent> Held(Core.Events.EventBroadcaster<LifecycleEvent>.Subscription subscription)
    {
        var events = new List<LifecycleEvent>();
        while (subscription.Reader.TryRead(out var e)) events.Add(e);
        return events;
    }
}
