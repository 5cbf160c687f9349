using Hull.Core;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Tests.Fixtures;

namespace Hull.Runtime.Tests.Cgroups;

public sealed class CgroupTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hull-cgroup-test-");

    public void Dispose() => _dir.Delete(recursive: true);

    private const string HybridMountInfo = """
        22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
        35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
        36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
        37 30 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
        """;

    private const string UnifiedMountInfo = """
        25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """;

    [Fact]
    public void A_hybrid_node_has_v1_controllers_including_co_mounted_ones_and_a_controllerless_cgroup2_tree()
    {
        var layout = CgroupLayout.FromMountInfo(HybridMountInfo);

        Assert.Equal(CgroupMode.Hybrid, layout.Mode);
        Assert.Equal("/sys/fs/cgroup/unified", layout.Unified?.MountPoint);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", layout.V1["cpu"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", layout.V1["cpuacct"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/memory", layout.V1["memory"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/systemd", layout.V1["name=systemd"].MountPoint);
        Assert.False(layout.V1.ContainsKey("xattr"));
    }

    [Fact]
    public void Unified_and_legacy_nodes_are_told_apart()
    {
        var unified = CgroupLayout.FromMountInfo(UnifiedMountInfo);
        Assert.Equal(CgroupMode.Unified, unified.Mode);
        Assert.Equal("/sys/fs/cgroup", unified.Unified?.MountPoint);
        Assert.Empty(unified.V1);

        var legacy = CgroupLayout.FromMountInfo(string.Join('\n', HybridMountInfo.Split('\n').Where(l => !l.Contains("cgroup2"))));
        Assert.Equal(CgroupMode.Legacy, legacy.Mode);
        Assert.Null(legacy.Unified);

        Assert.Equal(CgroupMode.None, CgroupLayout.FromMountInfo("25 22 0:22 / /sys rw - sysfs sysfs rw").Mode);
    }

    [Fact]
    public void A_process_cgroup_file_maps_to_a_directory_per_hierarchy()
    {
        var layout = CgroupLayout.FromMountInfo(HybridMountInfo);
        var paths = CgroupPaths.FromProcCgroup("""
            12:pids:/kubepods/pod1/abc
            5:memory:/kubepods/pod1/abc
            3:cpu,cpuacct:/kubepods/pod1/abc
            1:name=systemd:/system.slice/hull.service
            0::/kubepods/pod1/abc
            """, layout);

        Assert.Equal("/sys/fs/cgroup/memory/kubepods/pod1/abc", paths.Controller("memory"));
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc", paths.Controller("cpuacct"));
        Assert.Equal("/sys/fs/cgroup/systemd/system.slice/hull.service", paths.Controller("name=systemd"));
        Assert.Equal("/sys/fs/cgroup/unified/kubepods/pod1/abc", paths.Unified);

        var fromPath = CgroupPaths.ForCgroupsPath("/kubepods/pod1/abc", layout);
        Assert.Equal(paths.Controller("memory"), fromPath.Controller("memory"));
        Assert.Equal(paths.Unified, fromPath.Unified);
        Assert.Throws<ArgumentException>(() => CgroupPaths.ForCgroupsPath("relative/path", layout));
        Assert.Throws<ArgumentException>(() => CgroupPaths.ForCgroupsPath("/a/../../etc", layout));
    }

    [Fact]
    public void V1_stats_compute_the_working_set_as_usage_minus_inactive_file()
    {
        var cpuacct = Dir("cpuacct");
        var memory = Dir("memory");
        var pids = Dir("pids");
        File.WriteAllText(Path.Combine(cpuacct, "cpuacct.usage"), "123456789\n");
        File.WriteAllText(Path.Combine(memory, "memory.usage_in_bytes"), "10000000\n");
        File.WriteAllText(Path.Combine(memory, "memory.limit_in_bytes"), "9223372036854771712\n");
        File.WriteAllText(Path.Combine(memory, "memory.stat"),
            "cache 100\ninactive_file 1\ntotal_inactive_file 4000000\ntotal_rss 5000000\ntotal_pgfault 77\ntotal_pgmajfault 3\n");
        File.WriteAllText(Path.Combine(memory, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        File.WriteAllText(Path.Combine(pids, "pids.current"), "4\n");

        var stats = CgroupStatsReader.Read(new CgroupPaths(null,
            new Dictionary<string, string> { ["cpu"] = cpuacct, ["cpuacct"] = cpuacct, ["memory"] = memory, ["pids"] = pids }));

        Assert.Equal(123456789UL, stats.CpuUsageNanoseconds);
        Assert.Equal(10000000UL, stats.MemoryUsageBytes);
        Assert.Equal(6000000UL, stats.MemoryWorkingSetBytes);
        Assert.Equal(5000000UL, stats.MemoryRssBytes);
        Assert.Null(stats.MemoryLimitBytes); // the v1 "unlimited" value
        Assert.Equal(77UL, stats.PageFaults);
        Assert.Equal(3UL, stats.MajorPageFaults);
        Assert.Equal(2UL, stats.OomKills);
        Assert.Equal(4UL, stats.Pids);
    }

    [Fact]
    public void V2_stats_read_cpu_stat_memory_current_and_memory_events()
    {
        var dir = Dir("unified");
        File.WriteAllText(Path.Combine(dir, "cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
        File.WriteAllText(Path.Combine(dir, "memory.current"), "3000\n");
        File.WriteAllText(Path.Combine(dir, "memory.max"), "1048576\n");
        File.WriteAllText(Path.Combine(dir, "memory.stat"), "anon 1000\nfile 2000\ninactive_file 5000\npgfault 9\npgmajfault 1\n");
        File.WriteAllText(Path.Combine(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");

        var stats = CgroupStatsReader.Read(new CgroupPaths(dir, new Dictionary<string, string>()));

        Assert.Equal(2500000UL, stats.CpuUsageNanoseconds);
        Assert.Equal(3000UL, stats.MemoryUsageBytes);
        Assert.Equal(0UL, stats.MemoryWorkingSetBytes); // inactive_file above usage floors at zero, as the kubelet does
        Assert.Equal(1000UL, stats.MemoryRssBytes);
        Assert.Equal(1048576UL, stats.MemoryLimitBytes);
        Assert.Equal(1UL, stats.OomKills);
        Assert.Null(stats.Pids);

        File.WriteAllText(Path.Combine(dir, "memory.max"), "max\n");
        Assert.Null(CgroupStatsReader.Read(new CgroupPaths(dir, new Dictionary<string, string>())).MemoryLimitBytes);
    }

    [Fact]
    public void Stats_of_a_cgroup_that_does_not_exist_are_not_found()
    {
        var error = Assert.Throws<HullException>(() =>
            CgroupStatsReader.Read(new CgroupPaths(Path.Combine(_dir.FullName, "gone"), new Dictionary<string, string>())));
        Assert.Equal(ErrorKind.NotFound, error.Kind);
    }

    [CgroupfsFact]
    public async Task A_cgroup_tree_is_removed_children_first_in_every_hierarchy()
    {
        var layout = CgroupLayout.Detect();
        Assert.NotEqual(CgroupMode.None, layout.Mode);
        var name = "/hull-test-tree-" + Guid.NewGuid().ToString("n")[..8];
        var paths = CgroupPaths.ForCgroupsPath(name, layout);
        var selected = new CgroupPaths(paths.Unified, paths.V1.Where(p => p.Key is "memory" or "pids").ToDictionary());
        foreach (var dir in selected.Directories) Directory.CreateDirectory(Path.Combine(dir, "child", "grandchild"));
        Assert.All(selected.Directories, d => Assert.True(File.Exists(Path.Combine(d, "cgroup.procs")), $"{d} is not a cgroup"));

        var stats = CgroupStatsReader.Read(selected with { V1 = selected.V1.Concat(paths.V1.Where(p => p.Key == "cpuacct")).ToDictionary() });
        Assert.Null(stats.MemoryLimitBytes); // a new cgroup has no limit
        Assert.Equal(0UL, stats.OomKills);

        await CgroupTree.RemoveAsync(selected, TimeSpan.FromSeconds(5));

        Assert.All(selected.Directories, d => Assert.False(Directory.Exists(d)));
        await CgroupTree.RemoveAsync(selected, TimeSpan.FromSeconds(1)); // already gone is fine
        await CgroupTree.RemoveAsync(paths, TimeSpan.FromSeconds(5));
    }

    [CgroupfsFact]
    public void This_process_cgroup_resolves_to_existing_directories()
    {
        var layout = CgroupLayout.Detect();
        var own = CgroupPaths.ForProcess(Environment.ProcessId, layout);
        Assert.NotEmpty(own.Directories);
        Assert.All(own.Directories, d => Assert.True(Directory.Exists(d), d));
        Assert.Equal(layout.Mode == CgroupMode.Unified, own.V1.Count == 0);
    }

    private string Dir(string name) => Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;
}
