namespace Hull.Sandbox.MicroVm;

/// <summary>Which qemu accelerator a microVM runs under: KVM when it works, else TCG (software emulation).</summary>
public enum MicroVmAccel { Auto, Kvm, Tcg }

/// <summary>
/// How the VMs of one runtime handler are made: the first seven are <c>runtimes.&lt;name&gt;.microvm</c> in config
/// (cmd/hulld binds them; the config model holds the defaults a config file gets), the rest are tunables.
/// </summary>
public sealed record MicroVmOptions
{
    /// <summary>Where hack/build-microvm.sh puts the guest kernel and initramfs.</summary>
    public const string DefaultImageDirectory = "/usr/local/lib/hull/microvm";

    /// <summary>qemu-system-x86_64 (looked up on PATH when not absolute).</summary>
    public string QemuPath { get; init; } = "qemu-system-x86_64";
    /// <summary>The uncompressed guest kernel (ELF vmlinux with a PVH entry).</summary>
    public string KernelPath { get; init; } = Path.Combine(DefaultImageDirectory, "vmlinux");
    public string InitrdPath { get; init; } = Path.Combine(DefaultImageDirectory, "initramfs.cpio");
    public int MemoryMiB { get; init; } = 256;
    public int Vcpus { get; init; } = 1;
    public MicroVmAccel Accel { get; init; } = MicroVmAccel.Auto;
    /// <summary>How long a VM may take from qemu's start to the agent's first answer (TCG boots in ~5–10 s on a busy node).</summary>
    public TimeSpan BootTimeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>How long the one KVM probe boot (accel auto) may take before KVM is declared unusable.</summary>
    public TimeSpan KvmProbeTimeout { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>How long a guest has to power off cleanly before qemu is killed.</summary>
    public TimeSpan PowerOffTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Appended to the guest kernel's command line.</summary>
    public string ExtraKernelArgs { get; init; } = "";
    /// <summary>The pod's /dev/shm in the guest (a tmpfs every container of the pod binds).</summary>
    public long ShmSizeBytes { get; init; } = 64L * 1024 * 1024;
    /// <summary>How long one agent call may take (long polls excepted).</summary>
    public TimeSpan AgentCallTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>How the <c>microvm</c> sandboxer works on this node.</summary>
public sealed record MicroVmSandboxOptions
{
    /// <summary>hulld's state directory: each pod's files (VM, share, hostname, hosts, resolv.conf) go to <c>microvm/&lt;sandbox id&gt;/</c> below it.</summary>
    public required string StateDirectory { get; init; }
    /// <summary>The VM settings of each runtime handler whose sandboxer is <c>microvm</c>, by handler name.</summary>
    public IReadOnlyDictionary<string, MicroVmOptions> Handlers { get; init; } = new Dictionary<string, MicroVmOptions>();
    public string HostResolvConf { get; init; } = "/etc/resolv.conf";
}
