using Hull.Core;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.MicroVm;

/// <summary>The accelerator microVMs run under on this node and why (hullctl info shows both).</summary>
public sealed record AcceleratorChoice(string Name, string Reason);

/// <summary>
/// Chooses KVM or TCG once per daemon. With <see cref="MicroVmAccel.Auto"/>: TCG when /dev/kvm is missing or cannot be
/// opened, or is PVM's (kvm_pvm runs only PVM-built guest kernels; Debian's hangs under it); otherwise one probe VM
/// is booted under KVM and KVM is used if its agent answers in time.
/// </summary>
public sealed class Accelerators(MicroVmOptions options, Func<string, CancellationToken, Task> probeBoot, ILogger logger)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private AcceleratorChoice? _choice;

    /// <summary>The choice once made (null before the first VM).</summary>
    public AcceleratorChoice? Current => _choice;

    public async Task<AcceleratorChoice> ChooseAsync(CancellationToken cancellationToken)
    {
        if (_choice is { } made) return made;
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _choice ??= await DecideAsync(cancellationToken).ConfigureAwait(false);
            logger.LogInformation("microVMs run under {Accel}: {Reason}", _choice.Name, _choice.Reason);
            return _choice;
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<AcceleratorChoice> DecideAsync(CancellationToken cancellationToken)
    {
        switch (options.Accel)
        {
            case MicroVmAccel.Tcg: return new("tcg", "configured (accel = \"tcg\")");
            case MicroVmAccel.Kvm: return new("kvm", "configured (accel = \"kvm\")");
        }
        if (KvmUnusable() is { } why) return new("tcg", why);
        try
        {
            await probeBoot("kvm", cancellationToken).ConfigureAwait(false);
            return new("kvm", "/dev/kvm works (a probe VM booted under it)");
        }
        catch (HullException e)
        {
            return new("tcg", $"a probe VM did not boot under KVM: {e.Message}");
        }
    }

    /// <summary>Why KVM cannot be used, without booting anything; null when it may work.</summary>
    public static string? KvmUnusable(string device = "/dev/kvm", string pvmModule = "/sys/module/kvm_pvm")
    {
        if (!File.Exists(device)) return $"{device} does not exist (no hardware virtualization here)";
        if (Directory.Exists(pvmModule))
            return $"{device} is PVM (kvm_pvm), which boots only PVM-built guest kernels, not Debian's";
        try
        {
            using var kvm = new FileStream(device, FileMode.Open, FileAccess.ReadWrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot open {device}: {e.Message}";
        }
        return null;
    }
}
