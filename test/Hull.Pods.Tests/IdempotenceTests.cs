using Hull.Core;
using Hull.Pods.Stores;
using Hull.Pods.Tests.Fakes;

namespace Hull.Pods.Tests;

/// <summary>
/// Stop and remove are idempotent (CRI: "must not return an error if ... already stopped/removed"); the kubelet retries
/// them for objects it has already removed, so an unknown id is no error either (containerd 2.x, critest's Idempotence specs).
/// </summary>
public sealed class IdempotenceTests : IDisposable
{
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public async Task Stop_and_remove_of_an_unknown_pod_are_no_error()
    {
        await _node.Pods.StopAsync("does-not-exist", default);
        await _node.Pods.RemoveAsync("does-not-exist", default);
        Assert.Empty(_node.Pods.List());
    }

    [Fact]
    public async Task Stop_and_remove_of_an_unknown_container_are_no_error()
    {
        await _node.Containers.StopAsync("does-not-exist", TimeSpan.Zero, default);
        await _node.Containers.RemoveAsync("does-not-exist", default);
        Assert.Empty(_node.Containers.List());
    }

    [Fact]
    public async Task A_pod_and_its_container_can_be_stopped_and_removed_twice()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Containers.StartAsync(id, default);

        await _node.Containers.StopAsync(id, TimeSpan.Zero, default);
        await _node.Containers.StopAsync(id, TimeSpan.Zero, default);
        Assert.Equal(ContainerState.Exited, _node.Containers.Status(id).State);
        await _node.Pods.StopAsync(pod, default);
        await _node.Pods.StopAsync(pod, default);
        await _node.Containers.RemoveAsync(id, default);
        await _node.Containers.RemoveAsync(id, default);
        await _node.Containers.StopAsync(id, TimeSpan.Zero, default);
        await _node.Pods.RemoveAsync(pod, default);
        await _node.Pods.RemoveAsync(pod, default);
        await _node.Pods.StopAsync(pod, default);

        Assert.Empty(_node.Pods.List());
        Assert.Empty(_node.Containers.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
    }

    [Fact]
    public async Task Status_of_an_unknown_pod_or_container_is_still_NotFound()
    {
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Pods.StatusAsync("does-not-exist", false, default));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        e = Assert.Throws<HullException>(() => _node.Containers.Status("does-not-exist"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }
}
