using Hull.Sandbox.MicroVm;

namespace Hull.Sandbox.Tests.MicroVm;

/// <summary>The qemu command line of a microVM.</summary>
public sealed class QemuCommandTests
{
    private static QemuLaunch Launch(string accel, TapDevice? tap = null, string dir = "/run/hull/sandboxes/p/vm") => new()
    {
        Directory = dir,
        Name = "hull-p",
        KernelPath = "/k/vmlinux",
        InitrdPath = "/k/initramfs.cpio",
        Accel = accel,
        ShareDirectory = "/run/hull/sandboxes/p/share",
        Tap = tap,
    };

    private static string ValueOf(IReadOnlyList<string> args, string option, int occurrence = 0) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == option).Skip(occurrence).Select(x => args[x.i + 1]).First();

    [Fact]
    public void Under_TCG_the_guest_is_told_its_TSC_and_under_KVM_it_is_not()
    {
        var tcg = QemuCommand.Arguments(Launch("tcg"));
        Assert.Contains("tsc_early_khz=2000000 tsc=reliable", ValueOf(tcg, "-append"));
        Assert.Equal("max", ValueOf(tcg, "-cpu"));

        var kvm = QemuCommand.Arguments(Launch("kvm"));
        Assert.DoesNotContain("tsc_early_khz", ValueOf(kvm, "-append"));
        Assert.Equal("host", ValueOf(kvm, "-cpu"));
        Assert.Equal("kvm", ValueOf(kvm, "-accel"));
        Assert.Contains("panic=-1", ValueOf(kvm, "-append"));
    }

    [Fact]
    public void The_agent_socket_is_relative_to_the_VM_directory_and_commas_in_paths_are_doubled()
    {
        var args = QemuCommand.Arguments(Launch("tcg", dir: "/state,odd/vm"));
        Assert.Equal("socket,id=agent,path=agent.sock,server=on,wait=off", ValueOf(args, "-chardev", 1));
        Assert.Equal("file,id=console,path=/state,,odd/vm/console.log", ValueOf(args, "-chardev", 0));
        Assert.Equal("/state,odd/vm/qemu.pid", ValueOf(args, "-pidfile"));
        Assert.Contains("virtserialport,chardev=agent,name=hull.agent", args);
        Assert.Contains("-daemonize", args);
    }

    [Fact]
    public void A_TAP_becomes_a_virtio_net_device_with_the_pods_MAC()
    {
        Assert.DoesNotContain("-netdev", QemuCommand.Arguments(Launch("tcg")));
        var args = QemuCommand.Arguments(Launch("tcg", new TapDevice("tap0_hull", "aa:bb:cc:dd:ee:ff")));
        Assert.Equal("tap,id=net0,ifname=tap0_hull,script=no,downscript=no", ValueOf(args, "-netdev"));
        Assert.Contains("virtio-net-device,netdev=net0,mac=aa:bb:cc:dd:ee:ff", args);
        Assert.Contains($"virtio-9p-device,fsdev=share,mount_tag={GuestPaths.ShareTag}", args);
    }
}
