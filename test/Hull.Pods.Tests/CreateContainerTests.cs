using Hull.Core;
using Hull.Pods.Stores;
using Hull.Pods.Tests.Fakes;
using Hull.Runtime.Spec;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Tests;

/// <summary>CreateContainer and StartContainer through the real container manager, with every host effect faked.</summary>
public sealed class CreateContainerTests : IDisposable
{
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    private Task<string> RunPodAsync(string name = "web") => _node.Pods.RunAsync(TestLifecycle.PodSpec(name), default);

    /// <summary>Nothing of a container is left: no row, no index entry, no snapshot, no bundle, no task.</summary>
    private async Task AssertNoContainerLeftAsync()
    {
        Assert.Empty(_node.Containers.List());
        Assert.Equal(0, (await _node.RowsAsync()).Containers);
        Assert.Empty(_node.Images.Snapshots);
        Assert.Empty(_node.Files.Bundles);
        Assert.Empty(_node.Sandboxer.TaskService.Live);
    }

    [Fact]
    public async Task A_container_is_created_started_and_reported_running()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        Assert.Equal(ContainerState.Created, _node.Containers.Status(id).State);
        await _node.Containers.StartAsync(id, default);
        Assert.Equal(ContainerState.Running, _node.Containers.Status(id).State);
        Assert.Equal([id], _node.Images.Snapshots);
    }

    [Fact]
    public async Task Create_makes_no_task_start_makes_and_starts_it_and_a_restart_in_between_keeps_it_created()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        Assert.Empty(_node.Sandboxer.TaskService.Live);
        Assert.True((await new ContainerStore(_node.Metadata).ListAsync(default)).Single().TaskDeferred);

        await _node.RestartAsync();
        Assert.Equal(ContainerState.Created, _node.Containers.Status(id).State);
        Assert.Empty(_node.Sandboxer.TaskService.Live);

        await _node.Containers.StartAsync(id, default);
        Assert.Equal([id], _node.Sandboxer.TaskService.Live);
        var record = _node.Containers.Status(id);
        Assert.Equal((ContainerState.Running, false, 4242), (record.State, record.TaskDeferred, record.Pid));
    }

    [Fact]
    public async Task A_task_that_cannot_be_made_at_start_is_a_start_error_and_removing_leaves_nothing()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        _node.Faults.Fail("task.create");
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.StartAsync(id, default));
        Assert.Contains("task.create", e.Message);
        var record = _node.Containers.Status(id);
        Assert.Equal((ContainerState.Exited, "StartError", 128), (record.State, record.Reason, record.ExitCode));

        await _node.Containers.RemoveAsync(id, default);
        await AssertNoContainerLeftAsync();
    }

    [Fact]
    public async Task Stopping_a_container_whose_task_was_never_made_reports_it_killed_and_updating_one_makes_its_task()
    {
        var pod = await RunPodAsync();
        var stopped = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "a"), default);
        await _node.Containers.StopAsync(stopped, TimeSpan.FromSeconds(10), default);
        var record = _node.Containers.Status(stopped);
        Assert.Equal((ContainerState.Exited, 137), (record.State, record.ExitCode));
        Assert.Empty(_node.Sandboxer.TaskService.Live);

        var updated = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "b"), default);
        await _node.Containers.UpdateResourcesAsync(updated, new Runtime.Tasks.TaskResources { CpuShares = 512 }, default);
        Assert.Equal([updated], _node.Sandboxer.TaskService.Live);
        Assert.False(_node.Containers.Status(updated).TaskDeferred);
        await _node.Containers.StartAsync(updated, default);
        Assert.Equal(ContainerState.Running, _node.Containers.Status(updated).State);
    }

    [Theory]
    [InlineData("snapshot.prepare")]
    [InlineData("rootfs.mount")]
    [InlineData("spec.write")]
    public async Task A_failure_at_any_step_is_undone_and_the_name_can_be_used_again(string step)
    {
        var pod = await RunPodAsync();
        _node.Faults.Fail(step);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default));
        Assert.Contains(step, e.Message);
        await AssertNoContainerLeftAsync();

        _node.Faults.Clear(step);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        Assert.Equal(ContainerState.Created, _node.Containers.Status(id).State);
    }

    [Fact]
    public async Task The_rootfs_of_a_userns_pods_container_takes_the_pods_pinned_user_namespace_and_a_host_users_one_none()
    {
        var mapping = new OciIdMapping(0, 100000, 65536);
        var userns = new UserNamespaceOptions(UserNamespaceMode.Pod, [mapping], [mapping]);
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec("userns") with { UserNamespace = userns }, default);
        var request = TestLifecycle.ContainerRequest(pod);
        var id = await _node.Containers.CreateAsync(request with { Config = request.Config with { Security = request.Config.Security with { UserNamespace = userns } } }, default);
        var expected = new Hull.Linux.Namespaces.IdMapping(0, 100000, 65536);
        Assert.Equal(new Hull.Linux.Namespaces.PinnedUserNamespace($"/run/fake/ns/user/{pod}", expected, expected),
            _node.Files.RootfsUserNamespaces[_node.Files.BundleDirectory(id)]);

        var hostPod = await RunPodAsync("host");
        var hostId = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(hostPod), default);
        Assert.Null(_node.Files.RootfsUserNamespaces[_node.Files.BundleDirectory(hostId)]);
    }

    [Fact]
    public async Task A_spec_the_builder_refuses_is_undone_with_its_error()
    {
        var pod = await RunPodAsync();
        var request = TestLifecycle.ContainerRequest(pod) with
        {
            Config = new ContainerConfig { Name = "app", Command = ["sh"], Security = new ContainerSecurity { Privileged = true, PidMode = PidNamespaceMode.Container } },
        };
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(request, default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("privileged", e.Message);
        await AssertNoContainerLeftAsync();
    }

    [Fact]
    public async Task Pod_sysctls_are_checked_against_the_pods_namespace_modes_not_against_the_pins_on_the_host()
    {
        // A sandboxer may pin none of the pod's namespaces on the host (a microVM's IPC and UTS are the guest's, and
        // this fake pins nothing): the pod's own IPC namespace is still not the host's, so its IPC sysctls apply.
        var sysctls = new Dictionary<string, string> { ["kernel.shm_rmid_forced"] = "1", ["net.ipv4.ip_unprivileged_port_start"] = "0" };
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec("own-ipc") with { Sysctls = sysctls }, default);
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        var spec = await _node.Files.ReadSpecAsync(_node.Files.BundleDirectory(id), default);
        Assert.Contains("\"kernel.shm_rmid_forced\"", spec);
        Assert.Contains("\"net.ipv4.ip_unprivileged_port_start\"", spec);

        // With the host's IPC namespace the same sysctl is refused, naming it.
        var hostIpc = await _node.Pods.RunAsync(TestLifecycle.PodSpec("host-ipc") with { Sysctls = sysctls, IpcMode = NamespaceMode.Node }, default);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(hostIpc), default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("kernel.shm_rmid_forced", e.Message);
    }

    [Fact]
    public async Task A_container_created_by_image_id_reports_the_image_by_its_tag()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod) with { Image = FakeImages.ImageId }, default);
        var record = _node.Containers.Status(id);
        Assert.Equal(FakeImages.ImageTag, record.Image);
        Assert.Equal(FakeImages.ImageId, record.ImageId);
        Assert.Equal(FakeImages.ImageTag, Assert.Single(_node.Containers.List()).Image);
    }

    [Theory]
    // The kubelet creates containers by image id: the first tag is reported, as containerd does (repoTags[0]).
    [InlineData("sha256:0123", "registry.local/a:1")]
    // A tag of the image is reported as asked (normalised), not replaced by another tag.
    [InlineData("registry.local/a:2", "registry.local/a:2")]
    [InlineData("busybox", "docker.io/library/busybox:latest")]
    public void The_name_a_container_reports_its_image_by(string asked, string reported)
    {
        string[] tags = ["registry.local/a:1", "registry.local/a:2", "docker.io/library/busybox:latest"];
        Assert.Equal(reported, Images.ContainerImages.NameFor(asked, tags));
    }

    [Fact]
    public void An_image_without_tags_is_reported_as_asked() =>
        Assert.Equal("sha256:0123", Images.ContainerImages.NameFor("sha256:0123", []));

    [Fact]
    public async Task A_missing_image_is_NotFound_and_nothing_is_made()
    {
        var pod = await RunPodAsync();
        var e = await Assert.ThrowsAsync<HullException>(() =>
            _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod) with { Image = "nope" }, default));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        await AssertNoContainerLeftAsync();
    }

    [Fact]
    public async Task Create_in_a_pod_being_removed_fails_and_leaves_nothing()
    {
        var pod = await RunPodAsync();
        _node.Faults.Block("spec.write");
        var create = _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Faults.ReachedAsync("spec.write");

        // RemovePodSandbox begins while the create is in flight: it must wait for it, and the create must not win.
        var remove = _node.Pods.RemoveAsync(pod, default);
        await Task.Delay(50);
        Assert.False(remove.IsCompleted);
        _node.Faults.Release("spec.write");

        var e = await Assert.ThrowsAsync<HullException>(() => create);
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        await remove;
        await AssertNoContainerLeftAsync();
        Assert.Empty(_node.Pods.List());
        Assert.Equal((0, 0), await _node.RowsAsync());
    }

    [Fact]
    public async Task Create_in_a_pod_whose_removal_has_begun_fails_at_once()
    {
        var pod = await RunPodAsync();
        var a = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "a"), default);
        await _node.Containers.StartAsync(a, default);
        _node.Faults.Block("sandbox.shutdown");
        var remove = _node.Pods.RemoveAsync(pod, default);
        await _node.Faults.ReachedAsync("sandbox.shutdown");

        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod, "b"), default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("being stopped or removed", e.Message);

        _node.Faults.Release("sandbox.shutdown");
        await remove;
        await AssertNoContainerLeftAsync();
    }

    [Fact]
    public async Task Create_in_a_stopped_pod_is_FailedPrecondition()
    {
        var pod = await RunPodAsync();
        await _node.Pods.StopAsync(pod, default);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        await AssertNoContainerLeftAsync();
    }

    [Fact]
    public async Task Start_in_a_pod_that_is_not_ready_is_FailedPrecondition()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        // After a restart the pod's sandbox is gone (its network namespace vanished, say); the container was only created.
        _node.Sandboxer.StateAfterRestart = Sandbox.Controller.SandboxState.NotReady;
        await _node.RestartAsync();

        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.StartAsync(id, default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("not ready", e.Message);
        Assert.Equal(ContainerState.Created, _node.Containers.Status(id).State);
    }

    [Fact]
    public async Task A_container_being_created_is_not_listed_or_found()
    {
        var pod = await RunPodAsync();
        _node.Faults.Block("spec.write");
        var create = _node.Containers.CreateAsync(TestLifecycle.ContainerRequest(pod), default);
        await _node.Faults.ReachedAsync("spec.write");
        Assert.Empty(_node.Containers.List());
        _node.Faults.Release("spec.write");
        var id = await create;
        Assert.Single(_node.Containers.List(), c => c.Id == id);
    }
    [Theory]
    [InlineData("/etc/cron.d/evil")]
    [InlineData("../../etc/cron.d/evil")]
    [InlineData("app/../../evil.log")]
    public async Task A_log_path_that_leaves_the_pods_log_directory_is_InvalidArgument_and_nothing_is_made(string logPath)
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec() with { LogDirectory = "/var/log/pods/web" }, default);
        var request = TestLifecycle.ContainerRequest(pod);
        request = request with { Config = request.Config with { LogPath = logPath } };

        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(request, default));

        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"\"{logPath}\"", e.Message);
        Assert.Contains("\"app\"", e.Message);
        await AssertNoContainerLeftAsync();
        // The name was not kept by the refused request.
        await _node.Containers.CreateAsync(request with { Config = request.Config with { LogPath = "app/0.log" } }, default);
    }

    [Fact]
    public async Task A_relative_log_path_lands_in_the_pods_log_directory()
    {
        var pod = await _node.Pods.RunAsync(TestLifecycle.PodSpec() with { LogDirectory = "/var/log/pods/web" }, default);
        var request = TestLifecycle.ContainerRequest(pod);
        var id = await _node.Containers.CreateAsync(request with { Config = request.Config with { LogPath = "app/0.log" } }, default);
        Assert.Equal("/var/log/pods/web/app/0.log", _node.Containers.Status(id).LogPath);
    }
}
