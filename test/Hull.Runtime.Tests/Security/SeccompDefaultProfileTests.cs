using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Security;

public class SeccompDefaultProfileTests
{
    private static readonly KernelVersion Modern = new(6, 1);

    private static OciSeccomp Profile(IEnumerable<string>? caps = null, KernelVersion? kernel = null, string arch = "amd64") =>
        SeccompDefaultProfile.Build(caps ?? Capabilities.Default, kernel ?? Modern, arch);

    /// <summary>Allowed with no argument condition.</summary>
    private static bool Allowed(OciSeccomp p, string name) =>
        p.Syscalls!.Any(s => s.Action == SeccompDefaultProfile.ActAllow && s.Args is null && s.Names.Contains(name));

    private static bool Mentioned(OciSeccomp p, string name) => p.Syscalls!.Any(s => s.Names.Contains(name));

    [Fact]
    public void Everything_else_fails_with_EPERM()
    {
        var p = Profile();
        Assert.Equal("SCMP_ACT_ERRNO", p.DefaultAction);
        Assert.Equal(1u, p.DefaultErrnoRet);
        Assert.Equal(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], p.Architectures);
    }

    [Theory]
    [InlineData("read")]
    [InlineData("write")]
    [InlineData("execve")]
    [InlineData("openat2")]
    [InlineData("io_uring_setup", false)]
    [InlineData("clone3", false)]
    [InlineData("arch_prctl")]
    [InlineData("name_to_handle_at")]
    [InlineData("chroot")] // CAP_SYS_CHROOT is in the default set
    public void The_base_list_allows_ordinary_syscalls(string name, bool allowed = true) =>
        Assert.Equal(allowed, Allowed(Profile(), name));

    [Theory]
    [InlineData("keyctl")]
    [InlineData("add_key")]
    [InlineData("request_key")]
    [InlineData("mount")]
    [InlineData("unshare")]
    [InlineData("setns")]
    [InlineData("bpf")]
    [InlineData("reboot")]
    [InlineData("kexec_load")]
    [InlineData("init_module")]
    [InlineData("open_by_handle_at")]
    [InlineData("userfaultfd")]
    public void Dangerous_syscalls_are_not_in_the_default_profile(string name) => Assert.False(Mentioned(Profile(), name));

    [Fact]
    public void Ptrace_is_allowed_from_kernel_4_8_and_before_that_only_with_CAP_SYS_PTRACE()
    {
        Assert.True(Allowed(Profile(kernel: new(4, 8)), "ptrace"));
        Assert.True(Allowed(Profile(kernel: new(4, 8)), "process_vm_readv"));
        Assert.False(Mentioned(Profile(kernel: new(4, 4)), "ptrace"));
        Assert.True(Allowed(Profile([.. Capabilities.Default, "CAP_SYS_PTRACE"], new(4, 4)), "ptrace"));
        Assert.True(Allowed(Profile([.. Capabilities.Default, "CAP_SYS_PTRACE"]), "kcmp"));
        Assert.False(Mentioned(Profile(), "kcmp"));
    }

    [Fact]
    public void CAP_SYS_ADMIN_unlocks_mount_unshare_and_an_unrestricted_clone()
    {
        var p = Profile([.. Capabilities.Default, "CAP_SYS_ADMIN"]);
        foreach (var name in new[] { "mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf", "sethostname", "open_tree" })
            Assert.True(Allowed(p, name), name);
        Assert.DoesNotContain(p.Syscalls!, s => s.Names.Contains("clone3") && s.Action == "SCMP_ACT_ERRNO");
    }

    [Fact]
    public void Without_CAP_SYS_ADMIN_clone_may_not_create_namespaces_and_clone3_returns_ENOSYS()
    {
        var p = Profile();
        var clone = Assert.Single(p.Syscalls!, s => s.Names.Contains("clone"));
        var arg = Assert.Single(clone.Args!);
        Assert.Equal((0u, 2114060288UL, "SCMP_CMP_MASKED_EQ"), (arg.Index, arg.Value, arg.Op));
        var clone3 = Assert.Single(p.Syscalls!, s => s.Names.Contains("clone3"));
        Assert.Equal(("SCMP_ACT_ERRNO", 38u), (clone3.Action, clone3.ErrnoRet));
    }

    [Fact]
    public void On_s390x_the_clone_flags_are_argument_1()
    {
        var p = Profile(arch: "s390x");
        Assert.Equal(1u, Assert.Single(p.Syscalls!, s => s.Names.Contains("clone")).Args![0].Index);
        Assert.Equal(["SCMP_ARCH_S390", "SCMP_ARCH_S390X"], p.Architectures);
        Assert.True(Allowed(p, "s390_runtime_instr"));
    }

    [Theory]
    [InlineData("CAP_SYS_MODULE", "finit_module")]
    [InlineData("CAP_SYS_BOOT", "reboot")]
    [InlineData("CAP_SYS_TIME", "clock_settime")]
    [InlineData("CAP_SYS_NICE", "mbind")]
    [InlineData("CAP_SYSLOG", "syslog")]
    [InlineData("CAP_BPF", "bpf")]
    [InlineData("CAP_PERFMON", "perf_event_open")]
    [InlineData("CAP_DAC_READ_SEARCH", "open_by_handle_at")]
    [InlineData("CAP_SYS_RAWIO", "iopl")]
    [InlineData("CAP_SYS_PACCT", "acct")]
    [InlineData("CAP_SYS_TTY_CONFIG", "vhangup")]
    public void A_capability_unlocks_its_syscalls(string capability, string syscall)
    {
        Assert.False(Mentioned(Profile(), syscall));
        Assert.True(Allowed(Profile([.. Capabilities.Default, capability]), syscall));
    }

    [Fact]
    public void Personality_is_allowed_only_for_its_safe_values()
    {
        var values = Profile().Syscalls!.Where(s => s.Names.Contains("personality")).Select(s => Assert.Single(s.Args!)).ToList();
        Assert.All(values, a => Assert.Equal(("SCMP_CMP_EQ", 0u), (a.Op, a.Index)));
        Assert.Equal([0x0UL, 0x8, 0x20000, 0x20008, 0xffffffff], values.Select(a => a.Value));
    }

    [Fact]
    public void Socket_is_allowed_for_every_family_but_AF_ALG_and_AF_VSOCK()
    {
        var rules = Profile().Syscalls!.Where(s => s.Names.Contains("socket")).Select(s => Assert.Single(s.Args!)).ToList();
        bool Permits(ulong family) => rules.Any(r => r.Op switch
        {
            "SCMP_CMP_LT" => family < r.Value,
            "SCMP_CMP_EQ" => family == r.Value,
            "SCMP_CMP_GT" => family > r.Value,
            _ => false,
        });
        Assert.True(Permits(2));   // AF_INET
        Assert.True(Permits(10));  // AF_INET6
        Assert.True(Permits(39));
        Assert.True(Permits(44));
        Assert.False(Permits(38)); // AF_ALG
        Assert.False(Permits(40)); // AF_VSOCK
    }

    [Theory]
    [InlineData("arm64", "SCMP_ARCH_AARCH64", "set_tls")]
    [InlineData("riscv64", "SCMP_ARCH_RISCV64", "riscv_flush_icache")]
    [InlineData("ppc64le", null, "swapcontext")]
    public void Architecture_specific_parts(string goarch, string? arch, string syscall)
    {
        var p = Profile(arch: goarch);
        if (arch is null) Assert.Null(p.Architectures);
        else Assert.Contains(arch, p.Architectures!);
        Assert.True(Allowed(p, syscall));
        Assert.False(Allowed(p, "arch_prctl"));
    }

    [Fact]
    public void The_builder_uses_the_bounding_set_after_add_and_drop()
    {
        var caps = Capabilities.Compute(["SYS_ADMIN"], ["SYS_CHROOT"], Capabilities.KernelNames);
        var p = Profile(caps);
        Assert.True(Allowed(p, "mount"));
        Assert.False(Mentioned(p, "chroot"));
    }
}
