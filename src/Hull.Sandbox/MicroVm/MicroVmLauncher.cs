using Hull.Api.MicroVm;
using Hull.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// Boots the microVMs of one runtime handler with its options and accelerator; a VM that does not come up is killed
/// before the error is thrown.
/// </summary>
public sealed class MicroVmLauncher
{
    private readonly MicroVmOptions _options;
    private readonly string _probeDirectory;
    private readonly ILogger _logger;

    /// <param name="probeDirectory">Where the KVM probe VM's files go while it runs (removed after).</param>
    public MicroVmLauncher(MicroVmOptions options, string probeDirectory, ILogger? logger = null)
    {
        _options = options;
        _probeDirectory = probeDirectory;
        _logger = logger ?? NullLogger.Instance;
        Accelerators = new Accelerators(options, ProbeAsync, _logger);
    }

    public MicroVmOptions Options => _options;

    public Accelerators Accelerators { get; }

    public QemuLaunch LaunchFor(string name, string directory, string shareDirectory, TapDevice? tap, string accel) => new()
    {
        Directory = directory,
        Name = name,
        KernelPath = _options.KernelPath,
        InitrdPath = _options.InitrdPath,
        Accel = accel,
        MemoryMiB = _options.MemoryMiB,
        Vcpus = _options.Vcpus,
        ShareDirectory = shareDirectory,
        Tap = tap,
        ExtraKernelArgs = _options.ExtraKernelArgs,
    };

    /// <summary>Starts a VM and waits for its agent. On any failure qemu is killed and the error names the console's last words.</summary>
    public async Task<(MicroVm Vm, PingResponse Ping)> BootAsync(string name, string directory, string shareDirectory, TapDevice? tap,
        string? netNsPath, CancellationToken cancellationToken)
    {
        foreach (var (what, path) in new[] { ("kernel", _options.KernelPath), ("initramfs", _options.InitrdPath) })
            if (!File.Exists(path))
                throw new HullException(ErrorKind.FailedPrecondition, $"microVM {name}: the guest {what} {path} does not exist (run hack/build-microvm.sh)");
        var accel = await Accelerators.ChooseAsync(cancellationToken).ConfigureAwait(false);
        return await BootWithAsync(LaunchFor(name, directory, shareDirectory, tap, accel.Name), netNsPath, _options.BootTimeout, cancellationToken)
            .ConfigureAwait(false);
    }

    private async Task<(MicroVm Vm, PingResponse Ping)> BootWithAsync(QemuLaunch launch, string? netNsPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var vm = await MicroVm.StartAsync(_options.QemuPath, launch, netNsPath, _logger, cancellationToken).ConfigureAwait(false);
        try
        {
            var ping = await vm.ConnectAsync(timeout, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("microVM {Name}: agent {Version} answered, guest kernel {Kernel}, up {Uptime:0.0} s",
                launch.Name, ping.AgentVersion, ping.KernelRelease, ping.UptimeSeconds);
            return (vm, ping);
        }
        catch
        {
            vm.Kill();
            await vm.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Boots a throwaway VM (no network, an empty share) under <paramref name="accel"/> and powers it off.</summary>
    private async Task ProbeAsync(string accel, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(_probeDirectory, accel);
        var share = Path.Combine(dir, "share");
        Directory.CreateDirectory(share);
        try
        {
            var (vm, _) = await BootWithAsync(LaunchFor($"probe-{accel}", dir, share, null, accel), null, _options.KvmProbeTimeout, cancellationToken)
                .ConfigureAwait(false);
            await vm.PowerOffAsync(_options.PowerOffTimeout).ConfigureAwait(false);
            await vm.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
