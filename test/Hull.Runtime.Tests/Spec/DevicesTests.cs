using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class DevicesTests
{
    [Fact]
    public void A_host_device_is_statted_for_type_major_and_minor()
    {
        var grant = Assert.Single(Devices.ForContainerDevice(new ContainerDevice("/dev/mynull", "/dev/null", "rw")));
        Assert.Equal(("c", "/dev/mynull", 1L, 3L), (grant.Device.Type, grant.Device.Path, grant.Device.Major, grant.Device.Minor));
        Assert.NotNull(grant.Device.FileMode);
        Assert.Equal(new OciDeviceCgroup { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rw" }, grant.Rule);
    }

    [Fact]
    public void A_symlink_to_a_device_is_followed_and_empty_permissions_mean_rwm()
    {
        using var dir = new TempDirectory();
        string link = Path.Join(dir.Path, "zero-link");
        File.CreateSymbolicLink(link, "/dev/zero");
        var grant = Assert.Single(Devices.ForContainerDevice(new ContainerDevice("/dev/z", link, "")));
        Assert.Equal((1L, 5L, "rwm"), (grant.Device.Major, grant.Device.Minor, grant.Rule.Access));
    }

    [Fact]
    public void A_missing_host_device_is_InvalidArgument_naming_it()
    {
        var e = Assert.Throws<HullException>(() => Devices.ForContainerDevice(new ContainerDevice("/dev/gpu0", "/dev/does-not-exist-hull")));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"/dev/does-not-exist-hull\"", e.Message);
    }

    [Fact]
    public void A_regular_file_is_not_a_device()
    {
        using var dir = new TempDirectory();
        string file = dir.Write("notadevice", "x");
        var e = Assert.Throws<HullException>(() => Devices.ForContainerDevice(new ContainerDevice("/dev/x", file)));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("not a device node", e.Message);
    }

    [Fact]
    public void Bad_permissions_are_InvalidArgument()
    {
        var e = Assert.Throws<HullException>(() => Devices.ForContainerDevice(new ContainerDevice("/dev/n", "/dev/null", "rwx")));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void A_directory_adds_the_devices_under_it_at_the_container_path()
    {
        using var dir = new TempDirectory();
        string devdir = dir.Dir("devs");
        File.CreateSymbolicLink(Path.Join(devdir, "ignored-link"), "/dev/null");
        dir.Write("devs/not-a-device", "");
        Assert.Empty(Devices.ForContainerDevice(new ContainerDevice("/dev/x", devdir)));
    }

    [Fact]
    public void Host_devices_are_every_char_and_block_device_under_dev()
    {
        var devices = Devices.HostDevices("/dev");
        Assert.Contains(devices, d => d is { Path: "/dev/null", Type: "c", Major: 1, Minor: 3 });
        Assert.DoesNotContain(devices, d => d.Path.StartsWith("/dev/pts/", StringComparison.Ordinal));
        Assert.DoesNotContain(devices, d => d.Path == "/dev/console");
        Assert.All(devices, d => Assert.True(d.Type is "c" or "b"));
    }
}
