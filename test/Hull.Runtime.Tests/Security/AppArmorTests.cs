using Hull.Core;
using Hull.Runtime.Security;
using Hull.Runtime.Spec;
using Hull.Runtime.Tests.Spec;

namespace Hull.Runtime.Tests.Security;

public class AppArmorTests
{
    private static readonly AppArmorHost Enabled = new(true, new HashSet<string> { "hull-default", "my-profile" });
    private static readonly AppArmorHost EnabledWithoutDefault = new(true, new HashSet<string> { "my-profile" });

    [Theory]
    [InlineData(null)]
    [InlineData(SecurityProfileKind.RuntimeDefault)]
    [InlineData(SecurityProfileKind.Unconfined)]
    public void Without_AppArmor_on_the_host_default_and_unconfined_mean_nothing(SecurityProfileKind? kind) =>
        Assert.Null(AppArmorProfiles.Resolve(kind is null ? null : new SecurityProfile(kind.Value), false, AppArmorHost.Disabled));

    [Fact]
    public void Without_AppArmor_on_the_host_a_localhost_profile_is_a_clear_FailedPrecondition()
    {
        var e = Assert.Throws<HullException>(() => AppArmorProfiles.Resolve(SecurityProfile.Localhost("my-profile"), false, AppArmorHost.Disabled));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("AppArmor is not enabled on this host", e.Message);
        Assert.Contains("my-profile", e.Message);
    }

    [Fact]
    public void RuntimeDefault_and_unset_use_the_loaded_default_profile()
    {
        Assert.Equal("hull-default", AppArmorProfiles.Resolve(SecurityProfile.RuntimeDefault, false, Enabled));
        Assert.Equal("hull-default", AppArmorProfiles.Resolve(null, false, Enabled));
        Assert.Null(AppArmorProfiles.Resolve(SecurityProfile.Unconfined, false, Enabled));
        Assert.Null(AppArmorProfiles.Resolve(SecurityProfile.RuntimeDefault, privileged: true, Enabled));
    }

    [Fact]
    public void RuntimeDefault_without_the_profile_loaded_is_FailedPrecondition_not_unconfined()
    {
        var e = Assert.Throws<HullException>(() => AppArmorProfiles.Resolve(null, false, EnabledWithoutDefault));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("hull-default", e.Message);
    }

    [Fact]
    public void Localhost_needs_the_profile_loaded_and_applies_even_to_privileged()
    {
        Assert.Equal("my-profile", AppArmorProfiles.Resolve(SecurityProfile.Localhost("localhost/my-profile"), true, Enabled));
        var e = Assert.Throws<HullException>(() => AppArmorProfiles.Resolve(SecurityProfile.Localhost("other"), false, Enabled));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("\"other\"", e.Message);
    }

    [Fact]
    public void Detect_reads_the_module_parameter_and_the_loaded_profiles()
    {
        using var dir = new TempDirectory();
        string enabled = dir.Write("enabled", "Y\n");
        string profiles = dir.Write("profiles", "hull-default (enforce)\n/usr/bin/man (complain)\n");
        var host = AppArmorHost.Detect(enabled, profiles);
        Assert.True(host.Enabled);
        Assert.True(host.IsLoaded("hull-default"));
        Assert.True(host.IsLoaded("/usr/bin/man"));
        Assert.False(AppArmorHost.Detect(dir.Write("off", "N\n"), profiles).Enabled);
        Assert.False(AppArmorHost.Detect(Path.Join(dir.Path, "missing"), profiles).Enabled);
    }

    [Fact]
    public void The_default_profile_text_names_itself_and_denies_mounts()
    {
        string text = AppArmorDefaultProfile.Render("hull-default");
        Assert.Contains("profile hull-default flags=(attach_disconnected,mediate_deleted) {", text);
        Assert.Contains("deny mount,", text);
        Assert.Contains("signal (send,receive) peer=hull-default,", text);
        Assert.Contains("#include <tunables/global>", text);
        Assert.DoesNotContain("#include", AppArmorDefaultProfile.Render("x", withAbstractions: false));
    }
}
