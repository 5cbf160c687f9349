using System.Globalization;

namespace Hull.Sandbox.MicroVm;

/// <summary>A TAP device in the pod's network namespace and the MAC address the guest's NIC takes.</summary>
public sealed record TapDevice(string Name, string Mac);

/// <summary>Everything one qemu microVM is started with.</summary>
public sealed record QemuLaunch
{
    /// <summary>The VM's directory: console log, agent socket and pid file live here; qemu starts in it.</summary>
    public required string Directory { get; init; }
    public required string Name { get; init; }
    public required string KernelPath { get; init; }
    public required string InitrdPath { get; init; }
    /// <summary>"kvm" or "tcg".</summary>
    public required string Accel { get; init; }
    public int MemoryMiB { get; init; } = 256;
    public int Vcpus { get; init; } = 1;
    /// <summary>The host directory the guest mounts (9p tag <see cref="GuestPaths.ShareTag"/>).</summary>
    public required string ShareDirectory { get; init; }
    /// <summary>The pod's network, when it has one: qemu must then run in the pod's network namespace.</summary>
    public TapDevice? Tap { get; init; }
    public string ExtraKernelArgs { get; init; } = "";

    public string ConsoleLog => Path.Combine(Directory, "console.log");
    public string AgentSocket => Path.Combine(Directory, "agent.sock");
    public string PidFile => Path.Combine(Directory, "qemu.pid");
}

/// <summary>The qemu command line of a <c>-M microvm</c> guest (measured on Debian 12's qemu 7.2 and 6.1 kernel).</summary>
public static class QemuCommand
{
    /// <summary>
    /// Under TCG the guest cannot calibrate its TSC (it hangs there) unless told the frequency and that the TSC is
    /// reliable; KVM guests have kvmclock and must not be given a made-up frequency.
    /// </summary>
    private const string TcgClockArgs = "tsc_early_khz=2000000 tsc=reliable no_timer_check";

    public static string KernelCommandLine(QemuLaunch launch)
    {
        // panic=-1 + -no-reboot: a panic (the agent dying, as PID 1) ends qemu at once, and the console says why.
        var args = "console=ttyS0 panic=-1 quiet";
        if (launch.Accel == "tcg") args += " " + TcgClockArgs;
        if (launch.ExtraKernelArgs.Length > 0) args += " " + launch.ExtraKernelArgs;
        return args;
    }

    public static IReadOnlyList<string> Arguments(QemuLaunch launch)
    {
        var args = new List<string>
        {
            "-name", Escape(launch.Name),
            "-M", "microvm,rtc=on",
            "-accel", launch.Accel,
            "-cpu", launch.Accel == "kvm" ? "host" : "max",
            "-m", launch.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-smp", launch.Vcpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", launch.KernelPath,
            "-initrd", launch.InitrdPath,
            "-append", KernelCommandLine(launch),
            "-chardev", $"file,id=console,path={Escape(launch.ConsoleLog)}",
            "-serial", "chardev:console",
            // server=on,wait=off: qemu listens and does not wait; hulld connects (and reconnects after a restart). The path is
            // relative to the VM's directory (qemu starts there and binds before it daemonizes and moves to /): a socket
            // path may have only 107 bytes, and a state directory plus a 64-digit sandbox id can be longer.
            "-chardev", $"socket,id=agent,path={Escape(Path.GetFileName(launch.AgentSocket))},server=on,wait=off",
            "-device", "virtio-serial-device",
            "-device", $"virtserialport,chardev=agent,name={GuestPaths.AgentPortName}",
            // remap: the share holds bind mounts of other file systems; keep their inode numbers apart in the guest.
            "-fsdev", $"local,id=share,path={Escape(launch.ShareDirectory)},security_model=passthrough,multidevs=remap",
            "-device", $"virtio-9p-device,fsdev=share,mount_tag={GuestPaths.ShareTag}",
        };
        if (launch.Tap is { } tap)
        {
            args.AddRange(["-netdev", $"tap,id=net0,ifname={Escape(tap.Name)},script=no,downscript=no"]);
            args.AddRange(["-device", $"virtio-net-device,netdev=net0,mac={tap.Mac}"]);
        }
        args.AddRange(["-daemonize", "-pidfile", launch.PidFile]);
        return args;
    }

    /// <summary>qemu's option syntax: a comma inside a value is written twice.</summary>
    public static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}
