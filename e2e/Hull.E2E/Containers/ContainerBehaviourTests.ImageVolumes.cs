using Grpc.Core;
using Hull.Api.Cri;
using Hull.E2E.Fixtures;
using Hull.Grpc;

namespace Hull.E2E.Containers;

/// <summary>Image volumes (KEP-4639), as cri-tools' <c>pkg/validate/image_volume.go</c> checks them, plus removal of an image in use.</summary>
public sealed partial class ContainerBehaviourTests
{
    private const string VolumePath = "/mnt/image-volume";

    private static Mount ImageVolume(string imageRef, string userSpecified, bool readOnly = true, string subPath = "") => new()
    {
        ContainerPath = VolumePath,
        Readonly = readOnly,
        Image = new ImageSpec { Image = imageRef, UserSpecifiedImage = userSpecified },
        ImageSubPath = subPath,
    };

    private async Task<int> ExitCodeAsync(string id, params string[] cmd) => (await ExecAsync(id, cmd)).ExitCode;

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task An_image_volume_mounts_the_pulled_image_read_only_and_the_image_cannot_be_removed_while_used()
    {
        // The multilayer image (busybox + /data over 5 layers): its view is an overlay of read-only layers.
        string reference = f.Images.Multilayer.Reference;
        string imageRef = (await Cri.Image.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = reference } }, deadline: CriClient.In(Long)))
            .ImageRef;

        var whole = Config(f.Name("image-volume"), "/bin/sh", "-c", Forever);
        whole.Mounts.Add(ImageVolume(imageRef, reference));
        var id = await RunAsync(whole);
        Assert.Equal(0, await ExitCodeAsync(id, "/bin/ls", "-A", VolumePath + "/bin/sh"));
        Assert.Equal("a\n", (await ExecAsync(id, ["/bin/cat", VolumePath + "/data/a.txt"])).Stdout.ToStringUtf8());
        var write = await ExecAsync(id, ["/bin/touch", VolumePath + "/test-write"]);
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("Read-only file system", write.Stderr.ToStringUtf8());
        Assert.Equal(0, await ExitCodeAsync(id, VolumePath + "/bin/ls", VolumePath)); // not noexec

        var mount = (await StatusAsync(id)).Status.Mounts.Single(m => m.ContainerPath == VolumePath);
        Assert.True(mount.Readonly);
        Assert.Equal(imageRef, mount.Image.Image);
        Assert.Equal(imageRef, mount.Image.ImageRef);

        var subPath = Config(f.Name("image-volume-sub"), "/bin/sh", "-c", Forever);
        subPath.Mounts.Add(ImageVolume(imageRef, reference, subPath: "data"));
        var sub = await RunAsync(subPath);
        Assert.Equal("a\n", (await ExecAsync(sub, ["/bin/cat", VolumePath + "/a.txt"])).Stdout.ToStringUtf8());
        Assert.NotEqual(0, await ExitCodeAsync(sub, "/bin/ls", VolumePath + "/data"));
        Assert.Equal("data", (await StatusAsync(sub)).Status.Mounts.Single(m => m.ContainerPath == VolumePath).ImageSubPath);

        // In use: RemoveImage is refused, naming a container, and the image stays.
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = reference } }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.True(refused.Message.Contains(id, StringComparison.Ordinal) || refused.Message.Contains(sub, StringComparison.Ordinal), refused.Message);
        Assert.NotNull((await Cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = reference } })).Image);

        await Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 5 }, deadline: CriClient.In(Long));
        await RemoveAsync(id, sub);
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains("image-volumes", StringComparison.Ordinal));
        await Cri.Image.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = reference } });
        Assert.Null((await Cri.Image.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = reference } })).Image);
    }

    [E2EFact("runc", "conmon", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "nsenter",
        "iptables-save", "ip", "docker-registry", "skopeo", "umoci")]
    public async Task A_writable_image_volume_a_missing_sub_path_and_an_image_not_pulled_are_refused_and_leave_nothing()
    {
        var writable = Config(f.Name("image-volume-rw"), "/bin/true");
        writable.Mounts.Add(ImageVolume(f.Image, f.Image, readOnly: false));
        await AssertRefusedAsync(writable, StatusCode.InvalidArgument, "must be read-only");

        var missing = Config(f.Name("image-volume-missing"), "/bin/true");
        missing.Mounts.Add(ImageVolume(f.Image, f.Image, subPath: "not-existing"));
        await AssertRefusedAsync(missing, StatusCode.InvalidArgument, "\"not-existing\" of image volume");

        var notPulled = Config(f.Name("image-volume-unpulled"), "/bin/true");
        notPulled.Mounts.Add(ImageVolume(f.Images.Zstd.Reference, f.Images.Zstd.Reference));
        await AssertRefusedAsync(notPulled, StatusCode.NotFound, f.Images.Zstd.Reference);
    }
}
