using System.Diagnostics;
using Hull.Runtime.Handlers;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Controller;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.Tests.Namespaces;
using Hull.Sandbox.Tests.PodSandbox;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.Tests.MicroVm;

/// <summary>
/// The startup sweep of microVM pods the store does not know, and its independence from the podsandbox sweep: each
/// sandboxer sweeps only its own directory, so a live VM's files are never removed under it whatever the order.
/// </summary>
public sealed class MicroVmSweepTests
{
    private const string Known = "aaaa000000000000000000000000000000000000000000000000000000000001";
    private const string Orphan = "bbbb000000000000000000000000000000000000000000000000000000000002";
    private const string RuncOrphan = "cccc000000000000000000000000000000000000000000000000000000000003";

    private static MicroVmSandboxController Controller(string state)
    {
        var handler = new RuntimeHandler
        {
            Name = "vm", Sandboxer = MicroVmSandboxController.SandboxerName, RuntimeBinary = "runc", CniConfDir = Path.Combine(state, "net.d"),
            Snapshotter = "overlayfs",
        };
        return new MicroVmSandboxController(new MicroVmSandboxOptions { StateDirectory = state }, new RuntimeHandlers([handler], "vm"),
            new NamespacePinner(state), new CniManagers(new CniOptions { ConfDir = handler.CniConfDir, BinDirs = [], CacheDir = Path.Combine(state, "cni") },
                NullLoggerFactory.Instance));
    }

    private static string PodDirectory(string state, string id) => Path.Combine(state, MicroVmSandboxController.DirectoryName, id);

    /// <summary>A pod directory as a VM leaves it: its files, a share with a container, and a pid file naming <paramref name="pid"/>.</summary>
    private static void MakeVmDirectory(string state, string id, int pid)
    {
        var dir = PodDirectory(state, id);
        Directory.CreateDirectory(Path.Combine(dir, "vm"));
        Directory.CreateDirectory(Path.Combine(dir, "share", "c1", "rootfs"));
        File.WriteAllText(Path.Combine(dir, "hosts"), "127.0.0.1 localhost\n");
        File.WriteAllText(Path.Combine(dir, "vm", "qemu.pid"), pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>A stand-in for a VM's qemu: a shell blocked on its stdin whose command line names the VM's console log, as qemu's does.</summary>
    private static Process FakeQemu(string state, string id)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true };
        foreach (var arg in new[] { "-c", "read line", Path.Combine(PodDirectory(state, id), "vm", "console.log") }) start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    [Fact]
    public async Task An_unknown_microVM_pod_directory_goes_and_known_ones_and_other_sandboxers_directories_stay()
    {
        using var temp = new TempDirectory();
        // Pid files naming a process that is not a VM's qemu (this test's own): never killed.
        MakeVmDirectory(temp.Path, Known, Environment.ProcessId);
        MakeVmDirectory(temp.Path, Orphan, Environment.ProcessId);
        Directory.CreateDirectory(Path.Combine(temp.Path, MicroVmSandboxController.DirectoryName, ".probes", "x"));
        var runcPod = Path.Combine(temp.Path, "sandboxes", RuncOrphan);
        Directory.CreateDirectory(runcPod);

        var swept = await Controller(temp.Path).SweepOrphansAsync(new HashSet<string> { Known }, CancellationToken.None);

        Assert.Equal([Orphan], swept);
        Assert.False(Directory.Exists(PodDirectory(temp.Path, Orphan)));
        Assert.True(Directory.Exists(Path.Combine(PodDirectory(temp.Path, Known), "share", "c1", "rootfs")));
        Assert.True(Directory.Exists(Path.Combine(temp.Path, MicroVmSandboxController.DirectoryName, ".probes", "x")));
        Assert.True(Directory.Exists(runcPod));
    }

    [Fact]
    public async Task A_live_orphaned_VM_survives_the_podsandbox_sweep_and_the_microvm_sweep_kills_it_whatever_the_order()
    {
        using var temp = new TempDirectory();
        using var qemu = FakeQemu(temp.Path, Orphan);
        try
        {
            MakeVmDirectory(temp.Path, Orphan, qemu.Id);
            var runcPod = Path.Combine(temp.Path, "sandboxes", RuncOrphan);
            Directory.CreateDirectory(runcPod);
            var none = new HashSet<string>();
            var sandboxers = new Sandboxers([OrphanSweepTests.Controller(temp.Path), Controller(temp.Path)]);
            Assert.Equal(["podsandbox", "microvm"], sandboxers.All.Select(s => s.Name));

            // The podsandbox sweep runs first here: it removes its own orphan and leaves the VM and its files alone.
            Assert.Equal([RuncOrphan], await sandboxers.Get("podsandbox").SweepOrphansAsync(none, CancellationToken.None));
            Assert.False(Directory.Exists(runcPod));
            Assert.False(qemu.HasExited);
            Assert.True(File.Exists(Path.Combine(PodDirectory(temp.Path, Orphan), "vm", "qemu.pid")));

            Assert.Equal([Orphan], await sandboxers.Get("microvm").SweepOrphansAsync(none, CancellationToken.None));
            Assert.True(qemu.WaitForExit(TimeSpan.FromSeconds(10)), "the orphaned VM's qemu was not killed");
            Assert.False(Directory.Exists(PodDirectory(temp.Path, Orphan)));
        }
        finally
        {
            if (!qemu.HasExited) qemu.Kill();
        }
    }
}
