using Hull.Runtime.Cgroups;
using Hull.Sandbox.Controller;
using Hull.Sandbox.PodSandbox;
using Hull.Sandbox.Tests.Namespaces;

namespace Hull.Sandbox.Tests.PodSandbox;

/// <summary>UpdatePodSandboxResources' cgroup writes, against a fake cgroupfs directory tree.</summary>
public sealed class PodCgroupResourcesTests
{
    private static string MountLine(string fsType, string mountPoint, string superOptions) =>
        $"30 1 0:26 / {mountPoint} rw,nosuid,nodev,noexec,relatime shared:4 - {fsType} {fsType} {superOptions}";

    [Fact]
    public void On_cgroup_v2_it_writes_cpu_weight_cpu_max_and_memory_max_and_enables_the_controllers_down_the_path()
    {
        using var temp = new TempDirectory();
        var root = temp.Sub("cgroup");
        var layout = CgroupLayout.FromMountInfo(MountLine("cgroup2", root, "rw,nsdelegate"), root);
        Assert.Equal(CgroupMode.Unified, layout.Mode);
        var pod = Path.Combine(root, "kubepods", "pod1");
        Directory.CreateDirectory(pod);
        foreach (var dir in new[] { root, Path.Combine(root, "kubepods") })
        {
            File.WriteAllText(Path.Combine(dir, "cgroup.controllers"), "cpuset cpu io memory pids\n");
            File.WriteAllText(Path.Combine(dir, "cgroup.subtree_control"), "");
        }
        foreach (var file in new[] { "cpu.weight", "cpu.max", "memory.max" }) File.WriteAllText(Path.Combine(pod, file), "");

        var skipped = PodCgroupResources.Apply(CgroupPaths.ForCgroupsPath("/kubepods/pod1", layout), layout,
            new SandboxResources(CpuShares: 1024, CpuQuota: 50_000, CpuPeriod: 100_000, MemoryLimitBytes: 64L << 20));

        Assert.Empty(skipped);
        Assert.Equal("39", File.ReadAllText(Path.Combine(pod, "cpu.weight")));
        Assert.Equal("50000 100000", File.ReadAllText(Path.Combine(pod, "cpu.max")));
        Assert.Equal((64L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(pod, "memory.max")));
        // A real cgroupfs keeps each "+controller" write; the fake file keeps the last one.
        Assert.StartsWith("+", File.ReadAllText(Path.Combine(root, "kubepods", "cgroup.subtree_control")));
    }

    [Fact]
    public void On_cgroup_v2_no_quota_is_max_and_a_missing_file_is_reported_not_created()
    {
        using var temp = new TempDirectory();
        var root = temp.Sub("cgroup");
        var layout = CgroupLayout.FromMountInfo(MountLine("cgroup2", root, "rw"), root);
        var pod = Path.Combine(root, "hull", "p");
        Directory.CreateDirectory(pod);
        File.WriteAllText(Path.Combine(pod, "cpu.max"), "");

        var skipped = PodCgroupResources.Apply(CgroupPaths.ForCgroupsPath("/hull/p", layout), layout,
            new SandboxResources(CpuPeriod: 200_000, MemoryLimitBytes: 1 << 20));

        Assert.Equal("max 200000", File.ReadAllText(Path.Combine(pod, "cpu.max")));
        Assert.Equal([Path.Combine(pod, "memory.max")], skipped);
        Assert.False(File.Exists(Path.Combine(pod, "memory.max")));
    }

    [Fact]
    public void On_cgroup_v1_it_writes_the_cpu_and_memory_controller_files()
    {
        using var temp = new TempDirectory();
        var root = temp.Sub("cgroup");
        var mountinfo = string.Join('\n',
            MountLine("cgroup", Path.Combine(root, "cpu,cpuacct"), "rw,cpu,cpuacct"),
            MountLine("cgroup", Path.Combine(root, "memory"), "rw,memory"),
            MountLine("cgroup2", Path.Combine(root, "unified"), "rw"));
        var layout = CgroupLayout.FromMountInfo(mountinfo, root);
        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        var cpu = Path.Combine(root, "cpu,cpuacct", "pod");
        var memory = Path.Combine(root, "memory", "pod");
        Directory.CreateDirectory(cpu);
        Directory.CreateDirectory(memory);
        foreach (var file in new[] { "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us" }) File.WriteAllText(Path.Combine(cpu, file), "");
        File.WriteAllText(Path.Combine(memory, "memory.limit_in_bytes"), "");

        var skipped = PodCgroupResources.Apply(CgroupPaths.ForCgroupsPath("/pod", layout), layout,
            new SandboxResources(CpuShares: 512, CpuQuota: 25_000, CpuPeriod: 100_000, MemoryLimitBytes: 1 << 20));

        Assert.Empty(skipped);
        Assert.Equal("512", File.ReadAllText(Path.Combine(cpu, "cpu.shares")));
        Assert.Equal("25000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_quota_us")));
        Assert.Equal("100000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_period_us")));
        Assert.Equal("1048576", File.ReadAllText(Path.Combine(memory, "memory.limit_in_bytes")));
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(1024, 39)]
    [InlineData(262144, 10000)]
    public void Cpu_shares_map_to_weights_as_runc_maps_them(long shares, long weight) =>
        Assert.Equal(weight, PodCgroupResources.CpuSharesToWeight(shares));
}

/// <summary>The kubelet's pod slice under the systemd cgroup driver.</summary>
public sealed class SystemdSliceTests
{
    [Theory]
    [InlineData("kubepods.slice", "/kubepods.slice")]
    [InlineData("kubepods-besteffort.slice", "/kubepods.slice/kubepods-besteffort.slice")]
    [InlineData("kubepods-burstable-pod1234.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice")]
    [InlineData("-.slice", "/")]
    public void A_slice_expands_to_its_place_in_the_cgroup_tree(string slice, string path) =>
        Assert.Equal(path, SystemdSlice.Expand(slice));

    [Theory]
    [InlineData("/kubepods/besteffort/pod1")]
    [InlineData("kubepods")]
    [InlineData(".slice")]
    [InlineData("bad name.slice")]
    public void A_cgroup_parent_that_is_not_a_slice_is_refused_naming_the_driver(string parent)
    {
        var e = Assert.Throws<Hull.Core.HullException>(() => SystemdSlice.Parse(parent, "pod"));
        Assert.Equal(Hull.Core.ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("cgroup driver is systemd", e.Message);
    }

    [Fact]
    public void The_last_element_of_a_slice_path_is_the_slice() =>
        Assert.Equal("kubepods-besteffort-pod1.slice", SystemdSlice.Parse("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice", "pod"));
}
