using Hull.Core;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class ContainerMountsTests
{
    private static MountPlan Plan(ContainerSpecRequest request, SpecBuilderOptions? options = null, HostInfo? host = null) =>
        ContainerMounts.Plan(request, options ?? new SpecBuilderOptions(), host ?? SpecFixtures.Host());

    private static ContainerSpecRequest WithMounts(TempDirectory dir, params ContainerMount[] mounts) =>
        SpecFixtures.Request(SpecFixtures.Rootfs(dir), new ContainerConfig { Name = "app", Command = ["/app"], Mounts = mounts });

    [Fact]
    public void Defaults_are_proc_dev_devpts_shm_mqueue_sysfs_ro_and_cgroup_ro()
    {
        using var dir = new TempDirectory();
        var plan = Plan(SpecFixtures.Request(SpecFixtures.Rootfs(dir)));
        Assert.Equal(["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"], plan.Mounts.Select(m => m.Destination));
        Assert.Equal(["nosuid", "noexec", "nodev", "ro"], plan.Mounts.Single(m => m.Type == "sysfs").Options);
        Assert.Equal(["nosuid", "noexec", "nodev", "relatime", "ro"], plan.Mounts.Single(m => m.Type == "cgroup").Options);
        Assert.DoesNotContain(plan.Mounts, m => m.Destination == "/run");
        Assert.Null(plan.RootfsPropagation);
    }

    [Fact]
    public void Privileged_containers_get_writable_sysfs_and_cgroup()
    {
        using var dir = new TempDirectory();
        var request = SpecFixtures.Request(SpecFixtures.Rootfs(dir), new ContainerConfig { Name = "p", Command = ["/p"], Security = new ContainerSecurity { Privileged = true } });
        var plan = Plan(request);
        Assert.Contains("rw", plan.Mounts.Single(m => m.Type == "sysfs").Options!);
        Assert.Contains("rw", plan.Mounts.Single(m => m.Type == "cgroup").Options!);
    }

    [Fact]
    public void The_pods_files_and_shm_are_bound_read_only_only_with_a_read_only_rootfs()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with
        {
            HostsPath = dir.Write("pod/hosts", "127.0.0.1 localhost\n"),
            ResolvConfPath = dir.Write("pod/resolv.conf", "nameserver 10.0.0.10\n"),
            HostnamePath = dir.Write("pod/hostname", "web-0\n"),
            ShmPath = dir.Dir("pod/shm"),
        };
        var container = new ContainerConfig { Name = "app", Command = ["/app"], Security = new ContainerSecurity { ReadonlyRootfs = true } };
        var plan = Plan(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container, sandbox));

        OciMount Bind(string destination) => plan.Mounts.Single(m => m.Destination == destination);
        Assert.Equal(["rbind", "rprivate", "ro"], Bind("/etc/hosts").Options);
        Assert.Equal(sandbox.HostsPath, Bind("/etc/hosts").Source);
        Assert.Equal(["rbind", "rprivate", "ro"], Bind("/etc/resolv.conf").Options);
        Assert.Equal(["rbind", "rprivate", "ro"], Bind("/etc/hostname").Options);
        var shm = Bind("/dev/shm");
        Assert.Equal(("bind", sandbox.ShmPath, "rw"), (shm.Type, shm.Source, shm.Options![^1]));
    }

    [Fact]
    public void A_container_mount_over_a_pod_file_replaces_it_and_a_missing_pod_file_is_skipped()
    {
        using var dir = new TempDirectory();
        string mine = dir.Write("mine/hosts", "");
        var sandbox = SpecFixtures.Request("/").Sandbox with { HostsPath = dir.Write("pod/hosts", ""), ResolvConfPath = Path.Join(dir.Path, "pod/missing") };
        var container = new ContainerConfig { Name = "app", Command = ["/app"], Mounts = [new() { ContainerPath = "/etc//hosts", HostPath = mine }] };
        var plan = Plan(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container, sandbox));
        Assert.Equal(mine, Assert.Single(plan.Mounts, m => ContainerMounts.Clean(m.Destination) == "/etc/hosts").Source);
        Assert.DoesNotContain(plan.Mounts, m => m.Destination == "/etc/resolv.conf");
    }

    [Fact]
    public void Host_IPC_pods_get_the_hosts_dev_shm()
    {
        using var dir = new TempDirectory();
        var sandbox = SpecFixtures.Request("/").Sandbox with { Ipc = NamespaceRef.Host, ShmPath = dir.Dir("pod/shm") };
        var plan = Plan(SpecFixtures.Request(SpecFixtures.Rootfs(dir), sandbox: sandbox));
        Assert.Equal("/dev/shm", plan.Mounts.Single(m => m.Destination == "/dev/shm").Source);
    }

    [Fact]
    public void Mounts_are_sorted_by_depth_after_the_defaults()
    {
        using var dir = new TempDirectory();
        var plan = Plan(WithMounts(dir,
            new() { ContainerPath = "/data/a/b", HostPath = dir.Dir("h1") },
            new() { ContainerPath = "/data", HostPath = dir.Dir("h2") },
            new() { ContainerPath = "/data/a", HostPath = dir.Dir("h3") }));
        Assert.Equal(["/data", "/data/a", "/data/a/b"], plan.Mounts.Where(m => m.Type == "bind").Select(m => m.Destination));
    }

    [Fact]
    public void Mounting_dev_drops_every_default_under_dev()
    {
        using var dir = new TempDirectory();
        var plan = Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/dev", HostPath = dir.Dir("dev") }));
        Assert.DoesNotContain(plan.Mounts, m => m.Destination.StartsWith("/dev/", StringComparison.Ordinal));
        Assert.Equal("bind", plan.Mounts.Single(m => m.Destination == "/dev").Type);
    }

    public static TheoryData<MountPropagation, bool, string[], string?> PropagationCases => new()
    {
        { MountPropagation.Private, false, ["rbind", "rprivate", "rw"], null },
        { MountPropagation.Private, true, ["rbind", "rprivate", "ro"], null },
        { MountPropagation.HostToContainer, false, ["rbind", "rslave", "rw"], "rslave" },
        { MountPropagation.Bidirectional, true, ["rbind", "rshared", "ro"], "rshared" },
    };

    [Theory]
    [MemberData(nameof(PropagationCases))]
    public void Propagation_and_read_only_become_bind_options(MountPropagation propagation, bool readOnly, string[] options, string? rootPropagation)
    {
        using var dir = new TempDirectory();
        string source = dir.Dir("vol");
        // The source is on a shared mount.
        string mountInfo = dir.Write("mountinfo", $"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:2 / {dir.Path} rw shared:7 - ext4 /dev/sda2 rw\n");
        var plan = Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/vol", HostPath = source, Readonly = readOnly, Propagation = propagation }),
            new SpecBuilderOptions { MountInfoPath = mountInfo });
        var mount = plan.Mounts.Single(m => m.Destination == "/vol");
        Assert.Equal(("bind", source), (mount.Type, mount.Source));
        Assert.Equal(options, mount.Options);
        Assert.Equal(rootPropagation, plan.RootfsPropagation);
    }

    [Fact]
    public void Bidirectional_on_a_private_mount_and_host_to_container_on_a_private_mount_are_FailedPrecondition()
    {
        using var dir = new TempDirectory();
        string mountInfo = dir.Write("mountinfo", $"1 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n2 1 8:2 / {dir.Path} rw master:3 - ext4 /dev/sda2 rw\n");
        var options = new SpecBuilderOptions { MountInfoPath = mountInfo };
        var e = Assert.Throws<HullException>(() => Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/v", HostPath = dir.Dir("v"), Propagation = MountPropagation.Bidirectional }), options));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("not a shared mount", e.Message);
        // A slave mount is fine for host-to-container.
        Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/v", HostPath = dir.Dir("v"), Propagation = MountPropagation.HostToContainer }), options);

        string privateInfo = dir.Write("mountinfo2", $"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n");
        e = Assert.Throws<HullException>(() => Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/v", HostPath = dir.Dir("v"), Propagation = MountPropagation.HostToContainer }),
            new SpecBuilderOptions { MountInfoPath = privateInfo }));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
    }

    [Fact]
    public void Recursive_read_only_is_rro_where_the_kernel_supports_it()
    {
        using var dir = new TempDirectory();
        var mount = new ContainerMount { ContainerPath = "/ro", HostPath = dir.Dir("ro"), Readonly = true, RecursiveReadOnly = true };
        var plan = Plan(WithMounts(dir, mount));
        Assert.Equal(["rbind", "rprivate", "rro"], plan.Mounts.Single(m => m.Destination == "/ro").Options);
    }

    [Theory]
    [InlineData(true, 5, 11)]          // too old a kernel
    [InlineData(false, 6, 1)]          // no mount_setattr
    public void Recursive_read_only_without_support_is_refused_clearly(bool mountSetattr, int major, int minor)
    {
        using var dir = new TempDirectory();
        var mount = new ContainerMount { ContainerPath = "/ro", HostPath = dir.Dir("ro"), Readonly = true, RecursiveReadOnly = true };
        var host = SpecFixtures.Host() with { Kernel = new KernelVersion(major, minor), MountSetattr = mountSetattr };
        var e = Assert.Throws<HullException>(() => Plan(WithMounts(dir, mount), host: host));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("mount_setattr", e.Message);
        Assert.Contains("\"/ro\"", e.Message);
        Assert.False(ContainerMounts.RecursiveReadOnlySupported(host));
    }

    [Theory]
    [InlineData(false, MountPropagation.Private, "not read-only")]
    [InlineData(true, MountPropagation.HostToContainer, "private propagation")]
    public void Recursive_read_only_must_be_read_only_and_private(bool readOnly, MountPropagation propagation, string message)
    {
        using var dir = new TempDirectory();
        var mount = new ContainerMount { ContainerPath = "/ro", HostPath = dir.Dir("ro"), Readonly = readOnly, RecursiveReadOnly = true, Propagation = propagation };
        var e = Assert.Throws<HullException>(() => Plan(WithMounts(dir, mount)));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_missing_host_path_is_created_as_a_directory_and_symlinks_are_resolved()
    {
        using var dir = new TempDirectory();
        string missing = Path.Join(dir.Path, "new", "dir");
        string real = dir.Dir("real");
        string link = Path.Join(dir.Path, "link");
        File.CreateSymbolicLink(link, real);
        var plan = Plan(WithMounts(dir,
            new ContainerMount { ContainerPath = "/a", HostPath = missing },
            new ContainerMount { ContainerPath = "/b", HostPath = link }));
        Assert.True(Directory.Exists(missing));
        Assert.Equal(real, plan.Mounts.Single(m => m.Destination == "/b").Source);
    }

    [Fact]
    public void Relative_paths_are_InvalidArgument()
    {
        using var dir = new TempDirectory();
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<HullException>(() => Plan(WithMounts(dir, new ContainerMount { ContainerPath = "data", HostPath = "/tmp" }))).Kind);
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<HullException>(() => Plan(WithMounts(dir, new ContainerMount { ContainerPath = "/data", HostPath = "tmp" }))).Kind);
    }

    [Fact]
    public void The_termination_message_file_is_created_and_bound_read_write()
    {
        using var dir = new TempDirectory();
        string host = Path.Join(dir.Path, "pods", "c0ffee", "termination-log");
        var request = SpecFixtures.Request(SpecFixtures.Rootfs(dir)) with { TerminationMessage = new TerminationMessage(host) };
        var mount = Plan(request).Mounts.Single(m => m.Destination == TerminationMessage.DefaultContainerPath);
        Assert.True(File.Exists(host));
        Assert.Equal((host, "rw"), (mount.Source, mount.Options![^1]));
    }

    [Fact]
    public void Image_volumes_get_a_directory_each_unless_a_CRI_mount_covers_them()
    {
        using var dir = new TempDirectory();
        string rootfs = SpecFixtures.Rootfs(dir);
        dir.Write("rootfs/var/lib/data/seed.txt", "seeded");
        var request = SpecFixtures.Request(rootfs,
            new ContainerConfig { Name = "app", Command = ["/app"], Mounts = [new() { ContainerPath = "/cache", HostPath = dir.Dir("cache") }] },
            image: new ImageConfig { Volumes = ["/var/lib/data", "/cache", "logs"] }) with { ContainerDirectory = dir.Dir("ctr") };

        var mkdir = Plan(request);
        var data = mkdir.Mounts.Single(m => m.Destination == "/var/lib/data");
        Assert.StartsWith(Path.Join(dir.Path, "ctr", "volumes"), data.Source);
        Assert.Empty(Directory.EnumerateFileSystemEntries(data.Source!));
        Assert.Single(mkdir.Mounts, m => m.Destination == "/cache");
        Assert.Contains(mkdir.Mounts, m => m.Destination == "/logs");

        var copy = Plan(request, new SpecBuilderOptions { ImageVolumes = ImageVolumeMode.Copy });
        Assert.Equal("seeded", File.ReadAllText(Path.Join(copy.Mounts.Single(m => m.Destination == "/var/lib/data").Source!, "seed.txt")));

        var ignore = Plan(request, new SpecBuilderOptions { ImageVolumes = ImageVolumeMode.Ignore });
        Assert.DoesNotContain(ignore.Mounts, m => m.Destination == "/var/lib/data");
    }
}
