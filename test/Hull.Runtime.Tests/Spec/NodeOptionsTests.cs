using Hull.Runtime.Security;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

/// <summary>The node-wide settings of <see cref="SpecBuilderOptions"/> that the runtime config turns on.</summary>
public sealed class NodeOptionsTests
{
    private static Task<OciSpec> Build(TempDirectory dir, ContainerConfig container, SpecBuilderOptions options, HostInfo? host = null) =>
        new SpecBuilder(options, host ?? SpecFixtures.Host()).BuildAsync(SpecFixtures.Request(SpecFixtures.Rootfs(dir), container));

    [Fact]
    public async Task Disable_apparmor_applies_no_profile_even_on_an_apparmor_host()
    {
        using var dir = new TempDirectory();
        var host = SpecFixtures.Host() with { AppArmor = new AppArmorHost(true, new HashSet<string> { AppArmorProfiles.DefaultProfileName }) };
        var container = new ContainerConfig { Name = "app", Command = ["/a"] };
        Assert.NotNull((await Build(dir, container, new SpecBuilderOptions(), host)).Process!.ApparmorProfile);
        Assert.Null((await Build(dir, container, new SpecBuilderOptions { DisableAppArmor = true }, host)).Process!.ApparmorProfile);
    }

    [Fact]
    public async Task Disable_proc_mount_keeps_the_default_masked_paths_whatever_CRI_asks()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"], Security = new ContainerSecurity { MaskedPaths = [], ReadonlyPaths = [] },
        };
        var unmasked = await Build(dir, container, new SpecBuilderOptions());
        Assert.Null(unmasked.Linux!.MaskedPaths);
        var kept = await Build(dir, container, new SpecBuilderOptions { DisableProcMount = true });
        Assert.Equal(SpecBuilder.DefaultMaskedPaths, kept.Linux!.MaskedPaths);
        Assert.Equal(SpecBuilder.DefaultReadonlyPaths, kept.Linux.ReadonlyPaths);
    }

    [Fact]
    public async Task Disable_hugetlb_controller_drops_hugepage_limits_when_missing_controllers_are_tolerated()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"], Resources = new LinuxResources { HugepageLimits = [new HugepageLimit("2MB", 0)] },
        };
        Assert.NotNull((await Build(dir, container, new SpecBuilderOptions())).Linux!.Resources!.HugepageLimits);
        var disabled = await Build(dir, container, new SpecBuilderOptions { DisableHugetlbController = true, TolerateMissingHugetlbController = true });
        Assert.Null(disabled.Linux!.Resources!.HugepageLimits);
    }

    [Fact]
    public async Task Device_ownership_from_security_context_gives_device_nodes_to_the_container_user()
    {
        using var dir = new TempDirectory();
        var container = new ContainerConfig
        {
            Name = "app", Command = ["/a"], Devices = [new ContainerDevice("/dev/xnull", "/dev/null")],
            Security = new ContainerSecurity { RunAsUser = 1000, RunAsGroup = 2000 },
        };
        var host = (await Build(dir, container, new SpecBuilderOptions())).Linux!.Devices!.Single();
        Assert.Equal((0u, 0u), (host.Uid ?? 0, host.Gid ?? 0));
        var owned = (await Build(dir, container, new SpecBuilderOptions { DeviceOwnershipFromSecurityContext = true })).Linux!.Devices!.Single();
        Assert.Equal((1000u, 2000u), (owned.Uid, owned.Gid));
    }
}
