using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class ResourcesTests
{
    private static readonly OciDeviceCgroup[] DenyAll = [new() { Allow = false, Access = "rwm" }];

    private static OciResources Map(LinuxResources? r, HostInfo? host = null, bool tolerate = false) =>
        ResourceMapper.Map(r, DenyAll, host ?? SpecFixtures.Host(), tolerate);

    [Fact]
    public void Cpu_fields_map_one_to_one_and_zero_means_unset()
    {
        var cpu = Map(new LinuxResources { CpuPeriod = 100000, CpuQuota = 50000, CpuShares = 512, CpusetCpus = "0-1", CpusetMems = "0" }).Cpu!;
        Assert.Equal(new OciCpu { Period = 100000, Quota = 50000, Shares = 512, Cpus = "0-1", Mems = "0" }, cpu);
        Assert.Null(Map(new LinuxResources()).Cpu);
        Assert.Equal(new OciCpu { Shares = 2 }, Map(new LinuxResources { CpuShares = 2 }).Cpu);
    }

    public static TheoryData<long, long, bool, long?, long?> MemoryCases => new()
    {
        // limit, swap (memory+swap), swap controller, expected limit, expected swap
        { 256 << 20, 0, true, 256 << 20, 256 << 20 },      // no swap: memory+swap == limit
        { 256 << 20, 384 << 20, true, 256 << 20, 384 << 20 },
        { 256 << 20, 0, false, 256 << 20, null },
        { 256 << 20, 384 << 20, false, 256 << 20, null },
        { 0, 0, true, null, null },
    };

    [Theory]
    [MemberData(nameof(MemoryCases))]
    public void Memory_limit_and_swap(long limit, long swap, bool swapController, long? expectedLimit, long? expectedSwap)
    {
        var memory = Map(new LinuxResources { MemoryLimitInBytes = limit, MemorySwapLimitInBytes = swap }, SpecFixtures.Host() with { SwapControllerAvailable = swapController }).Memory;
        Assert.Equal(expectedLimit, memory?.Limit);
        Assert.Equal(expectedSwap, memory?.Swap);
    }

    [Fact]
    public void Hugepages_need_the_hugetlb_controller_unless_tolerated()
    {
        var r = new LinuxResources { HugepageLimits = [new("2MB", 4 << 21), new("1GB", 1 << 30)] };
        Assert.Equal([new OciHugepageLimit("2MB", 4 << 21), new OciHugepageLimit("1GB", 1 << 30)], Map(r).HugepageLimits);
        var noHugetlb = SpecFixtures.Host() with { HugetlbControllerAvailable = false };
        Assert.Equal(ErrorKind.FailedPrecondition, Assert.Throws<HullException>(() => Map(r, noHugetlb)).Kind);
        Assert.Null(Map(r, noHugetlb, tolerate: true).HugepageLimits);
    }

    [Fact]
    public void Unified_is_copied_and_device_rules_kept()
    {
        var res = Map(new LinuxResources { Unified = new Dictionary<string, string> { ["memory.high"] = "1000000", ["cpu.weight"] = "50" } });
        Assert.Equal("50", res.Unified!["cpu.weight"]);
        Assert.Equal(DenyAll, res.Devices);
        Assert.Equal(DenyAll, Map(null).Devices);
    }
}

public class CgroupsPathTests
{
    [Theory]
    [InlineData(CgroupDriver.Cgroupfs, "/kubepods/burstable/pod123", "/kubepods/burstable/pod123/ctr")]
    [InlineData(CgroupDriver.Cgroupfs, "/kubepods/burstable/pod123/", "/kubepods/burstable/pod123/ctr")]
    [InlineData(CgroupDriver.Cgroupfs, "kubepods/pod1", "/kubepods/pod1/ctr")]
    [InlineData(CgroupDriver.Cgroupfs, null, "/hull/pod/ctr")]
    [InlineData(CgroupDriver.Systemd, "kubepods-burstable-pod123.slice", "kubepods-burstable-pod123.slice:hull:ctr")]
    [InlineData(CgroupDriver.Systemd, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice", "kubepods-burstable-pod123.slice:hull:ctr")]
    [InlineData(CgroupDriver.Systemd, "", "system.slice:hull:ctr")]
    public void Cgroups_path_per_driver(CgroupDriver driver, string? parent, string expected) =>
        Assert.Equal(expected, CgroupsPath.For(driver, parent, "pod", "ctr"));

    [Theory]
    [InlineData(CgroupDriver.Systemd, "/kubepods/burstable/pod123")]
    [InlineData(CgroupDriver.Cgroupfs, "kubepods-burstable-pod123.slice")]
    public void A_parent_of_the_other_drivers_shape_is_InvalidArgument(CgroupDriver driver, string parent)
    {
        var e = Assert.Throws<HullException>(() => CgroupsPath.For(driver, parent, "pod", "ctr"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(parent, e.Message);
    }
}

public class OomScoreAdjPolicyTests
{
    [Theory]
    [InlineData(-998, 0, 0)]
    [InlineData(-998, -999, -998)]
    [InlineData(1000, 0, 1000)]
    [InlineData(0, 0, 0)]
    public void Restrict_never_goes_below_the_daemons_own_value(int requested, int current, int expected) =>
        Assert.Equal(expected, OomScoreAdjPolicy.Restrict(requested, current));

    [Fact]
    public void CanLower_probes_by_writing_and_restores_the_value()
    {
        using var dir = new TempDirectory();
        string fake = dir.Write("oom_score_adj", "5");
        Assert.True(OomScoreAdjPolicy.CanLower(fake)); // a plain file accepts any value
        Assert.Equal(5, OomScoreAdjPolicy.Current(fake));

        int before = OomScoreAdjPolicy.Current();
        OomScoreAdjPolicy.CanLower(); // whatever this machine allows, the probe changes nothing
        Assert.Equal(before, OomScoreAdjPolicy.Current());
    }
}
