using Hull.Core;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Tests.Namespaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Sandbox.Tests.MicroVm;

/// <summary>KVM or TCG: what /dev/kvm looks like, what the configuration says, what a probe boot shows.</summary>
public sealed class AcceleratorsTests
{
    private static MicroVmOptions Options(MicroVmAccel accel) => new() { Accel = accel };

    [Fact]
    public void KVM_is_unusable_without_the_device_or_when_it_is_PVMs()
    {
        using var temp = new TempDirectory();
        var device = Path.Combine(temp.Path, "kvm");
        var pvm = Path.Combine(temp.Path, "kvm_pvm");
        Assert.Contains("does not exist", Accelerators.KvmUnusable(device, pvm));
        File.WriteAllText(device, "");
        Assert.Null(Accelerators.KvmUnusable(device, pvm));
        Directory.CreateDirectory(pvm);
        Assert.Contains("PVM", Accelerators.KvmUnusable(device, pvm));
    }

    [Fact]
    public async Task A_configured_accelerator_is_used_without_probing()
    {
        var probes = 0;
        Task Probe(string accel, CancellationToken ct)
        {
            probes++;
            return Task.CompletedTask;
        }
        Assert.Equal("tcg", (await new Accelerators(Options(MicroVmAccel.Tcg), Probe, NullLogger.Instance).ChooseAsync(CancellationToken.None)).Name);
        Assert.Equal("kvm", (await new Accelerators(Options(MicroVmAccel.Kvm), Probe, NullLogger.Instance).ChooseAsync(CancellationToken.None)).Name);
        Assert.Equal(0, probes);
    }

    [Fact]
    public async Task Auto_decides_once_and_a_failed_probe_means_TCG_with_the_reason()
    {
        var probes = 0;
        Task Probe(string accel, CancellationToken ct)
        {
            probes++;
            throw new HullException(ErrorKind.DeadlineExceeded, "the guest agent did not answer within 20 s");
        }
        var accelerators = new Accelerators(Options(MicroVmAccel.Auto), Probe, NullLogger.Instance);
        var first = await accelerators.ChooseAsync(CancellationToken.None);
        var second = await accelerators.ChooseAsync(CancellationToken.None);

        Assert.Equal("tcg", first.Name);
        Assert.Same(first, second);
        Assert.Same(first, accelerators.Current);
        // Either /dev/kvm ruled KVM out without a boot, or the one probe did.
        Assert.True(probes == 0 ? Accelerators.KvmUnusable() is not null : probes == 1 && first.Reason.Contains("did not answer"), first.Reason);
    }
}
