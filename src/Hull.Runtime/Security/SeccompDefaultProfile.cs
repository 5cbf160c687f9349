using System.Runtime.InteropServices;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Security;

/// <summary>
/// The RuntimeDefault seccomp profile: a port of containerd's contrib/seccomp/seccomp_default.go (DefaultProfile),
/// including the AF_ALG/AF_VSOCK socket rules (containerd#13327). Everything not allowed fails with EPERM; what a
/// container may call beyond the base list depends on its bounding capabilities, the kernel and the architecture.
/// </summary>
public static class SeccompDefaultProfile
{
    public const string ActAllow = "SCMP_ACT_ALLOW", ActErrno = "SCMP_ACT_ERRNO";
    public const string OpEqualTo = "SCMP_CMP_EQ", OpLessThan = "SCMP_CMP_LT", OpGreaterThan = "SCMP_CMP_GT", OpMaskedEqual = "SCMP_CMP_MASKED_EQ";

    private const uint EPERM = 1, ENOSYS = 38;
    private const ulong AF_ALG = 38, AF_VSOCK = 40;
    // CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
    private const ulong CloneNamespaceFlags = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000;

    /// <summary>The syscalls every container may make (containerd's first, unconditional rule).</summary>
    public static IReadOnlyList<string> BaseAllowList { get; } =
    [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset", "chdir",
        "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
        "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
        "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
        "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
        "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
        "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
        "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
        "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd",
        "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
        "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
        "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
        "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
        "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
        "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
        "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
        "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
        "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
        "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
        "mlockall", "map_shadow_stack", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
        "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
        "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
        "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
        "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
        "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
        "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
        "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
        "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
        "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
        "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
        "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
        "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
        "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
        "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
        "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority",
        "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
        "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
        "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
        "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs",
        "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill",
        "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
        "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
        "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
        "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
        "wait4", "waitid", "waitpid", "write", "writev",
    ];

    /// <summary>Syscalls a bounding capability unlocks (containerd's switch over Process.Capabilities.Bounding).</summary>
    public static IReadOnlyList<(string Capability, IReadOnlyList<string> Syscalls)> CapabilityRules { get; } =
    [
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
        ("CAP_SYS_ADMIN", ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
            "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
        ("CAP_SYS_MODULE", ["delete_module", "init_module", "finit_module"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime", "clock_settime64"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYS_NICE", ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
    ];

    /// <summary>Go's GOARCH name for an architecture, which is how containerd's profile switches.</summary>
    public static string GoArch(Architecture architecture) => architecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.X86 => "386",
        Architecture.Arm64 => "arm64",
        Architecture.Arm or Architecture.Armv6 => "arm",
        Architecture.S390x => "s390x",
        Architecture.Ppc64le => "ppc64le",
        Architecture.RiscV64 => "riscv64",
        Architecture.LoongArch64 => "loong64",
        _ => architecture.ToString().ToLowerInvariant(),
    };

    private static IReadOnlyList<string> Arches(string goarch) => goarch switch
    {
        "amd64" => ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "arm64" => ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
        "mips64" or "mips64n32" => ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32"],
        "mipsel64" or "mipsel64n32" => ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32"],
        "s390x" => ["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
        "riscv64" => ["SCMP_ARCH_RISCV64"],
        "loong64" => ["SCMP_ARCH_LOONGARCH64"],
        _ => [],
    };

    /// <summary>The profile for the running kernel and architecture.</summary>
    public static OciSeccomp Build(IEnumerable<string> boundingCapabilities) =>
        Build(boundingCapabilities, KernelVersion.Current(), GoArch(RuntimeInformation.OSArchitecture));

    /// <param name="boundingCapabilities">The container's bounding set (CAP_ names), after add/drop.</param>
    /// <param name="kernel">The host kernel: ptrace and process_vm_* are allowed to everyone from 4.8 on.</param>
    /// <param name="goarch">The architecture, spelled as Go's GOARCH ("amd64", "arm64", ...).</param>
    public static OciSeccomp Build(IEnumerable<string> boundingCapabilities, KernelVersion kernel, string goarch)
    {
        var syscalls = new List<OciSyscall>
        {
            Allow(BaseAllowList),
            // socket(2) for every address family but AF_ALG (38) and AF_VSOCK (40), as three single-condition
            // ranges: runc turns several conditions on one argument into OR-ed rules, so "!= 38 && != 40" in one
            // rule would allow both. socketcall(2) stays allowed, so 32-bit x86 callers are not filtered.
            Allow(["socket"], Arg(0, AF_ALG, OpLessThan)),
            Allow(["socket"], Arg(0, AF_ALG + 1, OpEqualTo)),
            Allow(["socket"], Arg(0, AF_VSOCK, OpGreaterThan)),
            // personality(2) only for PER_LINUX, PER_LINUX32, UNAME26 variants and the query value.
            Allow(["personality"], Arg(0, 0x0, OpEqualTo)),
            Allow(["personality"], Arg(0, 0x0008, OpEqualTo)),
            Allow(["personality"], Arg(0, 0x20000, OpEqualTo)),
            Allow(["personality"], Arg(0, 0x20008, OpEqualTo)),
            Allow(["personality"], Arg(0, 0xffffffff, OpEqualTo)),
        };

        // Before 4.8 ptrace could bypass seccomp, so only CAP_SYS_PTRACE (below) allows it there.
        if (kernel >= new KernelVersion(4, 8))
            syscalls.Add(Allow(["process_vm_readv", "process_vm_writev", "ptrace"]));

        switch (goarch)
        {
            case "ppc64le":
                syscalls.Add(Allow(["sync_file_range2", "swapcontext"]));
                break;
            case "arm" or "arm64":
                syscalls.Add(Allow(["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]));
                break;
            case "amd64":
                syscalls.Add(Allow(["arch_prctl", "modify_ldt"]));
                break;
            case "386":
                syscalls.Add(Allow(["modify_ldt"]));
                break;
            case "s390" or "s390x":
                syscalls.Add(Allow(["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]));
                break;
            case "riscv64":
                syscalls.Add(Allow(["riscv_flush_icache"]));
                break;
        }

        bool admin = false;
        foreach (var capability in boundingCapabilities)
        {
            if (capability == "CAP_SYS_ADMIN") admin = true;
            foreach (var (cap, names) in CapabilityRules)
                if (cap == capability) syscalls.Add(Allow(names));
        }

        if (!admin)
        {
            // Without CAP_SYS_ADMIN clone may not create namespaces (the flags are argument 1 on s390).
            uint flagsArg = goarch is "s390" or "s390x" ? 1u : 0u;
            syscalls.Add(Allow(["clone"], new OciSyscallArg { Index = flagsArg, Value = CloneNamespaceFlags, ValueTwo = null, Op = OpMaskedEqual }));
            // clone3's flags are behind a pointer seccomp cannot read: ENOSYS makes libc fall back to clone (moby#42681).
            syscalls.Add(new OciSyscall { Names = ["clone3"], Action = ActErrno, ErrnoRet = ENOSYS });
        }

        var arches = Arches(goarch);
        return new OciSeccomp
        {
            DefaultAction = ActErrno,
            DefaultErrnoRet = EPERM,
            Architectures = arches.Count == 0 ? null : arches,
            Syscalls = syscalls,
        };
    }

    private static OciSyscall Allow(IReadOnlyList<string> names, params OciSyscallArg[] args) =>
        new() { Names = names, Action = ActAllow, Args = args.Length == 0 ? null : args };

    private static OciSyscallArg Arg(uint index, ulong value, string op) => new() { Index = index, Value = value, Op = op };
}
