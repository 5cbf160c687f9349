using Hull.Core;
using Hull.Pods.Tests.Fakes;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests;

/// <summary>RunPodSandbox, stop and remove through the real pod manager, with the sandboxer faked.</summary>
public sealed class RunPodSandboxTests : IDisposable
{
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public async Task A_pod_runs_is_persisted_and_listed_as_ready()
    {
        var id = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        Assert.Equal(SandboxState.Ready, Assert.Single(_node.Pods.List()).State);
        Assert.Equal((1, 0), await _node.RowsAsync());
        Assert.Equal([id], _node.Sandboxer.Live);
    }

    [Fact]
    public async Task Port_forward_connects_through_the_pods_sandboxer_only_while_the_pod_is_ready()
    {
        var id = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        await using (var connection = await _node.Pods.ConnectAsync(id[..8], 8080, default))
            Assert.Equal([(id, 8080)], _node.Sandboxer.Connections);

        await _node.Pods.StopAsync(id, default);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.ConnectAsync(id, 8080, default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains(id, e.Message);
        Assert.Single(_node.Sandboxer.Connections);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<HullException>(() => _node.Pods.ConnectAsync("ffff", 8080, default))).Kind);
    }

    [Theory]
    [InlineData("sandbox.create")]
    [InlineData("sandbox.start")]
    public async Task A_failure_at_any_step_is_undone_in_full_and_the_name_can_be_used_again(string step)
    {
        _node.Faults.Fail(step);
        var spec = TestLifecycle.PodSpec();
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.RunAsync(spec, default));
        Assert.Contains(step, e.Message);
        Assert.Empty(_node.Pods.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
        Assert.Empty(_node.Sandboxer.Live);
        Assert.Contains(spec.Id, _node.Sandboxer.ShutDown);

        // The same name again, once the fault is gone: the failed attempt released it.
        _node.Faults.Clear(step);
        await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        Assert.Single(_node.Pods.List());
    }

    [Fact]
    public async Task A_cancelled_run_is_undone_and_reported_as_a_deadline()
    {
        _node.Faults.Block("sandbox.start");
        using var cts = new CancellationTokenSource();
        var spec = TestLifecycle.PodSpec();
        var run = _node.Pods.RunAsync(spec, cts.Token);
        await _node.Faults.ReachedAsync("sandbox.start");
        cts.Cancel();
        _node.Faults.Release("sandbox.start");
        // The fake ignores the token; the manager notices it at the next await (persisting the ready row).
        var e = await Assert.ThrowsAnyAsync<Exception>(() => run);
        Assert.True(e is HullException { Kind: ErrorKind.DeadlineExceeded } or OperationCanceledException, e.ToString());
        Assert.Empty(_node.Pods.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
        Assert.Empty(_node.Sandboxer.Live);
    }

    [Fact]
    public async Task Two_runs_of_one_pod_name_do_not_both_succeed()
    {
        await _node.Pods.RunAsync(TestLifecycle.PodSpec("web"), default);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.RunAsync(TestLifecycle.PodSpec("web"), default));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Single(_node.Pods.List());
    }

    [Fact]
    public async Task An_unknown_runtime_handler_is_InvalidArgument_naming_the_known_ones()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.RunAsync(TestLifecycle.PodSpec() with { RuntimeHandler = "kata" }, default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"kata\"", e.Message);
        Assert.Contains("\"fake\"", e.Message);
        Assert.Equal((0, 0), await _node.RowsAsync());
    }

    [Fact]
    public async Task Remove_stops_and_removes_the_pods_containers_then_the_pod()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var c1 = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "a"), default);
        await _node.Containers.StartAsync(c1, default);
        await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "b"), default);

        await _node.Pods.RemoveAsync(pod, default);

        Assert.Empty(_node.Pods.List());
        Assert.Empty(_node.Containers.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
        Assert.Empty(_node.Sandboxer.TaskService.Live);
        Assert.Empty(_node.Images.Snapshots);
        Assert.Empty(_node.Files.Bundles);
        Assert.Empty(_node.Sandboxer.Live);
    }
}
