using Hull.Api.Cri;
using Hull.Core;
using Hull.Pods.Stores;
using Spec = Hull.Runtime.Spec;

namespace Hull.Cri.Tests;

/// <summary>CreateContainer's CRI config to the domain, and a container record back to CRI's ContainerStatus.</summary>
public class ContainerTranslationTests
{
    private static ContainerConfig Config(LinuxContainerSecurityContext? security = null, params Mount[] mounts)
    {
        var config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Image = new ImageSpec { Image = "busybox" } };
        if (security is not null) config.Linux = new LinuxContainerConfig { SecurityContext = security };
        config.Mounts.AddRange(mounts);
        return config;
    }

#pragma warning disable CS0612 // the deprecated fields are what these tests send
    private static LinuxContainerSecurityContext Legacy(string seccomp = "", string apparmor = "") =>
        new() { SeccompProfilePath = seccomp, ApparmorProfile = apparmor };
#pragma warning restore CS0612

    public static TheoryData<string, Spec.SecurityProfile?> LegacyForms => new()
    {
        { "", null },
        { "runtime/default", Spec.SecurityProfile.RuntimeDefault },
        { "docker/default", Spec.SecurityProfile.RuntimeDefault },
        { "unconfined", Spec.SecurityProfile.Unconfined },
        { "localhost/profiles/audit.json", Spec.SecurityProfile.Localhost("profiles/audit.json") },
        { "localhost//var/lib/kubelet/seccomp/audit.json", Spec.SecurityProfile.Localhost("/var/lib/kubelet/seccomp/audit.json") },
    };

    [Theory]
    [MemberData(nameof(LegacyForms))]
    public void The_deprecated_seccomp_profile_path_is_honoured(string path, Spec.SecurityProfile? expected) =>
        Assert.Equal(expected, RuntimeService.ToDomain(Config(Legacy(seccomp: path))).Security.Seccomp);

    [Theory]
    [MemberData(nameof(LegacyForms))]
    public void The_deprecated_apparmor_profile_is_honoured(string profile, Spec.SecurityProfile? expected) =>
        Assert.Equal(expected, RuntimeService.ToDomain(Config(Legacy(apparmor: profile))).Security.AppArmor);

    [Theory]
    [InlineData("/var/lib/kubelet/seccomp/audit.json", "")]
    [InlineData("", "my-profile")]
    [InlineData("localhost/", "")]
    public void A_custom_profile_without_localhost_is_InvalidArgument_naming_it(string seccomp, string apparmor)
    {
        var e = Assert.Throws<HullException>(() => RuntimeService.ToDomain(Config(Legacy(seccomp, apparmor))));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"\"{seccomp}{apparmor}\"", e.Message);
        Assert.Contains("\"app\"", e.Message);
        Assert.Contains(seccomp.Length > 0 ? "seccomp" : "AppArmor", e.Message);
    }

    [Fact]
    public void The_structured_fields_win_over_the_deprecated_ones()
    {
        var security = Legacy(seccomp: "not-a-profile", apparmor: "unconfined");
        security.Seccomp = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.Unconfined };
        security.Apparmor = new SecurityProfile { ProfileType = SecurityProfile.Types.ProfileType.RuntimeDefault };
        var domain = RuntimeService.ToDomain(Config(security)).Security;
        Assert.Equal(Spec.SecurityProfile.Unconfined, domain.Seccomp);
        Assert.Equal(Spec.SecurityProfile.RuntimeDefault, domain.AppArmor);
    }

    [Fact]
    public void An_image_mount_becomes_an_image_volume()
    {
        var mount = new Mount { ContainerPath = "/mnt/v", Readonly = true, Image = new ImageSpec { Image = "sha256:abc" }, ImageSubPath = "etc" };
        var domain = Assert.Single(RuntimeService.ToDomain(Config(null, mount)).Mounts);
        Assert.Equal("sha256:abc", domain.Image);
        Assert.Equal("etc", domain.ImageSubPath);
        Assert.Equal("", domain.HostPath);

        var host = Assert.Single(RuntimeService.ToDomain(Config(null, new Mount { ContainerPath = "/data", HostPath = "/srv" })).Mounts);
        Assert.Null(host.Image);
        Assert.Null(host.ImageSubPath);
    }

    [Fact]
    public void Status_reports_an_image_volume_with_its_image_id_as_image_ref()
    {
        var record = new ContainerRecord
        {
            Id = "c1", SandboxId = "p1", Name = "app", Image = "registry.local/busybox:latest", ImageId = "sha256:id", BundlePath = "/run/b",
            Mounts =
            [
                new ContainerMountInfo("/mnt/v", "/run/b/image-volumes/0/etc", true, "Private", new ImageVolumeInfo("registry.local/data:1", "sha256:data", "etc", "c1-image-volume-0")),
                new ContainerMountInfo("/data", "/srv", false, "Private"),
            ],
        };
        var status = RuntimeService.ToCriStatus(record);
        Assert.Equal("registry.local/busybox:latest", status.Image.Image);
        var volume = status.Mounts.Single(m => m.ContainerPath == "/mnt/v");
        Assert.Equal("registry.local/data:1", volume.Image.Image);
        Assert.Equal("sha256:data", volume.Image.ImageRef);
        Assert.Equal("etc", volume.ImageSubPath);
        Assert.True(volume.Readonly);
        Assert.Null(status.Mounts.Single(m => m.ContainerPath == "/data").Image);
    }
}
