using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Pods.Images;
using Hull.Pods.Stores;
using Hull.Pods.Tests.Fakes;
using Hull.Runtime.Spec;

namespace Hull.Pods.Tests;

/// <summary>Image volumes (KEP-4639) through the real container manager: a view snapshot per volume, undone and released with the container.</summary>
public sealed class ImageVolumeTests : IDisposable
{
    private const string VolumePath = "/mnt/image-volume";
    private readonly TestLifecycle _node = new();

    public void Dispose() => _node.Dispose();

    private Task<string> RunPodAsync() => _node.Pods.RunAsync(TestLifecycle.PodSpec(), default);

    private static ContainerCreateRequest WithVolume(string pod, ContainerMount mount)
    {
        var request = TestLifecycle.ContainerRequest(pod);
        return request with { Config = request.Config with { Mounts = [mount] } };
    }

    private static ContainerMount Volume(string? subPath = null, bool readOnly = true, string image = FakeImages.ImageId, string hostPath = "") =>
        new() { ContainerPath = VolumePath, HostPath = hostPath, Image = image, ImageSubPath = subPath, Readonly = readOnly };

    private GcRoots Roots => new(new ContainerStore(_node.Metadata), new SandboxStore(_node.Metadata));

    private async Task AssertNothingLeftAsync()
    {
        Assert.Empty(_node.Containers.List());
        Assert.Equal(0, (await _node.RowsAsync()).Containers);
        Assert.Empty(_node.Images.Snapshots);
        Assert.Empty(_node.Files.Bundles);
        Assert.Empty(_node.Sandboxer.TaskService.Live);
    }

    [Fact]
    public async Task The_image_is_mounted_read_only_from_a_view_the_gc_keeps_and_status_names_its_id()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(WithVolume(pod, Volume()), default);

        var record = _node.Containers.Status(id);
        var mount = Assert.Single(record.Mounts);
        var volume = Assert.IsType<ImageVolumeInfo>(mount.Image);
        Assert.Equal(FakeImages.ImageId, volume.Image);
        Assert.Equal(FakeImages.ImageId, volume.ImageId);
        Assert.StartsWith(_node.Files.BundleDirectory(id), mount.HostPath);
        Assert.Contains(volume.SnapshotKey, _node.Images.Snapshots);
        Assert.Contains(volume.SnapshotKey, await Roots.SnapshotKeysAsync(default));
        Assert.Contains(id, await Roots.ImageUserAsync(FakeImages.ImageId, default));

        var spec = JsonNode.Parse((await _node.Containers.SpecJsonAsync(record, default))!)!;
        var bind = spec["mounts"]!.AsArray().Single(m => (string?)m!["destination"] == VolumePath)!;
        Assert.Equal(mount.HostPath, (string?)bind["source"]);
        Assert.Contains("ro", bind["options"]!.AsArray().Select(o => (string?)o));
    }

    [Fact]
    public async Task Removing_the_container_releases_the_view_and_the_image()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(WithVolume(pod, Volume()), default);
        await _node.Containers.RemoveAsync(id, default);

        await AssertNothingLeftAsync();
        Assert.Null(await Roots.ImageUserAsync(FakeImages.ImageId, default));
    }

    [Fact]
    public async Task A_sub_path_mounts_only_that_directory_of_the_image()
    {
        var pod = await RunPodAsync();
        var id = await _node.Containers.CreateAsync(WithVolume(pod, Volume("etc")), default);
        var mount = Assert.Single(_node.Containers.Status(id).Mounts);
        Assert.EndsWith("/etc", mount.HostPath);
        Assert.Equal("etc", mount.Image!.SubPath);
    }

    [Theory]
    [InlineData("not-existing", "does not exist in the image")]
    [InlineData("../../..", "must be relative")]
    [InlineData("/etc", "must be relative")]
    public async Task A_bad_sub_path_is_InvalidArgument_and_leaves_nothing(string subPath, string message)
    {
        var pod = await RunPodAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(WithVolume(pod, Volume(subPath)), default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(message, e.Message);
        Assert.Contains(subPath, e.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task A_writable_image_volume_is_InvalidArgument()
    {
        var pod = await RunPodAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(WithVolume(pod, Volume(readOnly: false)), default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("must be read-only", e.Message);
        Assert.Contains(VolumePath, e.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task An_image_volume_with_a_host_path_is_InvalidArgument()
    {
        var pod = await RunPodAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(WithVolume(pod, Volume(hostPath: "/tmp")), default));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("host path \"/tmp\"", e.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task An_image_that_was_not_pulled_is_NotFound()
    {
        var pod = await RunPodAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(WithVolume(pod, Volume(image: "nginx")), default));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("\"nginx\"", e.Message);
        await AssertNothingLeftAsync();
    }

    [Theory]
    [InlineData("snapshot.view")]
    [InlineData("volume.mount")]
    public async Task A_failure_at_any_step_undoes_the_views_too(string step)
    {
        var pod = await RunPodAsync();
        _node.Faults.Fail(step);
        var e = await Assert.ThrowsAsync<HullException>(() => _node.Containers.CreateAsync(WithVolume(pod, Volume()), default));
        Assert.Contains(step, e.Message);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task A_create_caught_by_a_crash_is_undone_with_its_views()
    {
        var pod = await RunPodAsync();
        _node.Faults.Block("spec.write");
        var create = _node.Containers.CreateAsync(WithVolume(pod, Volume()), default);
        await _node.Faults.ReachedAsync("spec.write");
        Assert.Equal(2, _node.Images.Snapshots.Count);

        await _node.RestartAsync();

        await AssertNothingLeftAsync();
        _node.Faults.Release("spec.write");
        await create.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
