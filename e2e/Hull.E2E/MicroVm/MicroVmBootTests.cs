using Hull.Core;
using Hull.E2E.Fixtures;
using Hull.Sandbox.MicroVm;

namespace Hull.E2E.MicroVm;

/// <summary>The microVM host component alone: boot a guest (TCG here), hear its agent, power it off.</summary>
public sealed class MicroVmBootTests
{
    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Kernel, MicroVmTestSupport.Initrd)]
    public async Task A_microvm_boots_answers_with_its_own_kernel_and_powers_off()
    {
        using var dir = new MicroVmTestDirectory();
        var launcher = dir.Launcher(new MicroVmOptions());
        var share = Directory.CreateDirectory(Path.Combine(dir.Path, "share")).FullName;

        var (vm, ping) = await launcher.BootAsync("boot-test", Path.Combine(dir.Path, "vm"), share, tap: null, netNsPath: null, CancellationToken.None);
        await using (vm)
        {
            Assert.Equal(MicroVmTestSupport.GuestKernelRelease, ping.KernelRelease);
            Assert.NotEqual(Environment.OSVersion.Version.ToString(), ping.KernelRelease);
            Assert.NotEqual((await File.ReadAllTextAsync("/proc/sys/kernel/osrelease")).Trim(), ping.KernelRelease);
            Assert.False(vm.HasExited);
            Assert.NotNull(launcher.Accelerators.Current);

            await vm.PowerOffAsync(TimeSpan.FromSeconds(20));
            Assert.True(vm.HasExited);
            Assert.False(Directory.Exists($"/proc/{vm.Pid}") && File.ReadAllText($"/proc/{vm.Pid}/cmdline").Contains("boot-test"));
            Assert.Contains("shutdown requested", await File.ReadAllTextAsync(vm.Launch.ConsoleLog));
        }
    }

    [E2EFact(MicroVmTestSupport.QemuTool, MicroVmTestSupport.Initrd)]
    public async Task A_corrupt_kernel_fails_the_boot_with_qemus_reason_and_leaves_no_qemu()
    {
        using var dir = new MicroVmTestDirectory();
        var kernel = Path.Combine(dir.Path, "vmlinux-corrupt");
        await File.WriteAllBytesAsync(kernel, new byte[4096]);
        var launcher = dir.Launcher(new MicroVmOptions { KernelPath = kernel, Accel = MicroVmAccel.Tcg });
        var share = Directory.CreateDirectory(Path.Combine(dir.Path, "share")).FullName;

        var e = await Assert.ThrowsAsync<HullException>(() =>
            launcher.BootAsync("corrupt-kernel", Path.Combine(dir.Path, "vm"), share, null, null, CancellationToken.None));
        Assert.Contains("qemu failed to start", e.Message);
        Assert.Contains("kernel", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(MicroVmTestSupport.QemuProcessesUsing(dir.Path));
    }
}
