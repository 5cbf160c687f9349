using Hull.Sandbox.MicroVm;

namespace Hull.E2E.MicroVm;

/// <summary>The guest hack/build-microvm.sh built (hack/install-deps.sh runs it) and helpers for microVM tests.</summary>
public static class MicroVmTestSupport
{
    public const string QemuTool = "qemu-system-x86_64";
    public const string Kernel = MicroVmOptions.DefaultImageDirectory + "/vmlinux";
    public const string Initrd = MicroVmOptions.DefaultImageDirectory + "/initramfs.cpio";

    public static string GuestKernelRelease =>
        File.ReadAllText(Path.Combine(MicroVmOptions.DefaultImageDirectory, "kernel.release")).Trim();

    /// <summary>Pids of qemu processes whose command line mentions <paramref name="path"/>.</summary>
    public static List<int> QemuProcessesUsing(string path)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.StartsWith(QemuTool, StringComparison.Ordinal) || cmdline.Contains("/" + QemuTool, StringComparison.Ordinal))
                    if (cmdline.Contains(path, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}

/// <summary>A short temporary directory (agent socket paths must stay under 108 bytes) removed at the end.</summary>
public sealed class MicroVmTestDirectory : IDisposable
{
    public MicroVmTestDirectory() => Path = Directory.CreateTempSubdirectory("hmv-").FullName;

    public string Path { get; }

    /// <summary>hulld's state directory in these tests.</summary>
    public string StateDirectory => System.IO.Path.Combine(Path, "state");

    /// <summary>A launcher of VMs with <paramref name="options"/> whose KVM probe (if any) runs below this directory.</summary>
    public MicroVmLauncher Launcher(MicroVmOptions options) => new(options, System.IO.Path.Combine(Path, "probe"));

    public void Dispose()
    {
        foreach (var pid in MicroVmTestSupport.QemuProcessesUsing(Path))
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
