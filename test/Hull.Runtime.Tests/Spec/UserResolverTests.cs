using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public class UserResolverTests
{
    private static Task<ResolvedUser> Resolve(string rootfs, ContainerSecurity security, string? imageUser = null) =>
        UserResolver.ResolveAsync(rootfs, "example.com/app:1", security, new ImageConfig { User = imageUser }, CancellationToken.None);

    public static TheoryData<string, long?, string?, long?, string?, uint, uint, string?> Cases => new()
    {
        // case, runAsUser, runAsUsername, runAsGroup, image user, uid, gid, home
        { "nothing: root", null, null, null, null, 0, 0, "/root" },
        { "run_as_username", null, "app", null, null, 1000, 1000, "/home/app" },
        { "run_as_user with passwd entry", 1000, null, null, null, 1000, 1000, "/home/app" },
        { "run_as_user without passwd entry", 4321, null, null, null, 4321, 0, null },
        { "run_as_user and run_as_group", 1000, null, 77, null, 1000, 77, "/home/app" },
        { "username wins over uid", 4321, "daemon", null, null, 1, 1, "/usr/sbin" },
        { "image user name", null, null, null, "app", 1000, 1000, "/home/app" },
        { "image user name:group", null, null, null, "app:staff", 1000, 50, "/home/app" },
        { "image uid:gid numbers", null, null, null, "1000:63", 1000, 63, "/home/app" },
        { "image uid:group name", null, null, null, "555:wheel", 555, 10, null },
        { "image name:gid", null, null, null, "daemon:9", 1, 9, "/usr/sbin" },
        { "CRI user overrides image user", 1000, null, null, "daemon", 1000, 1000, "/home/app" },
        { "empty home is no home", null, "nohome", null, null, 1001, 1001, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Resolves_uid_gid_and_home(string @case, long? runAsUser, string? runAsUsername, long? runAsGroup, string? imageUser, uint uid, uint gid, string? home)
    {
        using var dir = new TempDirectory();
        string rootfs = SpecFixtures.Rootfs(dir);
        var user = await Resolve(rootfs, new ContainerSecurity { RunAsUser = runAsUser, RunAsUsername = runAsUsername, RunAsGroup = runAsGroup }, imageUser);
        Assert.True((uid, gid, home) == (user.Uid, user.Gid, user.Home), $"{@case}: got {user}");
    }

    [Fact]
    public async Task Numeric_uid_without_any_passwd_file_is_allowed_with_gid_0()
    {
        using var dir = new TempDirectory();
        var user = await Resolve(SpecFixtures.Rootfs(dir, withFiles: false), new ContainerSecurity { RunAsUser = 1234 });
        Assert.Equal((1234u, 0u), (user.Uid, user.Gid));
        Assert.Empty(user.AdditionalGids);
    }

    [Theory]
    [InlineData("ghost", null)]
    [InlineData(null, "ghost")]
    [InlineData(null, "ghost:wheel")]
    public async Task A_user_the_image_lacks_is_InvalidArgument_naming_user_and_image(string? runAsUsername, string? imageUser)
    {
        using var dir = new TempDirectory();
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity { RunAsUsername = runAsUsername }, imageUser));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"ghost\"", e.Message);
        Assert.Contains("example.com/app:1", e.Message);
    }

    [Fact]
    public async Task A_username_in_an_image_without_passwd_is_InvalidArgument()
    {
        using var dir = new TempDirectory();
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SpecFixtures.Rootfs(dir, withFiles: false), new ContainerSecurity { RunAsUsername = "app" }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("no /etc/passwd", e.Message);
    }

    [Fact]
    public async Task An_unknown_group_name_is_InvalidArgument()
    {
        using var dir = new TempDirectory();
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity(), "app:nogroup"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"nogroup\"", e.Message);
    }

    [Fact]
    public async Task Run_as_group_without_a_user_is_InvalidArgument()
    {
        using var dir = new TempDirectory();
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity { RunAsGroup = 5 }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(2147483648L)]
    public async Task Out_of_range_uids_are_InvalidArgument(long uid)
    {
        using var dir = new TempDirectory();
        var e = await Assert.ThrowsAsync<HullException>(() => Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity { RunAsUser = uid }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public async Task Merge_policy_adds_the_image_groups_of_the_user_to_the_pods_sorted_and_unique()
    {
        using var dir = new TempDirectory();
        var user = await Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity { RunAsUser = 1000, SupplementalGroups = [63, 10, 2000] });
        // app is a member of wheel (10) and staff (50); its own group "app" is not a supplementary one.
        Assert.Equal([10u, 50u, 63u, 2000u], user.AdditionalGids);
    }

    [Fact]
    public async Task Strict_policy_uses_only_the_pods_groups()
    {
        using var dir = new TempDirectory();
        var user = await Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity
        {
            RunAsUser = 1000, SupplementalGroups = [2000, 63], SupplementalGroupsPolicy = SupplementalGroupsPolicy.Strict,
        });
        Assert.Equal([63u, 2000u], user.AdditionalGids);
    }

    [Fact]
    public async Task Root_by_default_gets_the_groups_that_list_root_as_in_containerd()
    {
        using var dir = new TempDirectory();
        var user = await Resolve(SpecFixtures.Rootfs(dir), new ContainerSecurity());
        Assert.Equal([1u, 10u], user.AdditionalGids);
    }

    [Fact]
    public async Task Symlinks_in_the_image_resolve_inside_the_rootfs_never_to_the_host()
    {
        using var dir = new TempDirectory();
        string rootfs = dir.Dir("rootfs");
        // The host side of the escape: a file the image must not be able to point at.
        dir.Write("outside/passwd", "evil:x:0:0::/:/bin/sh\n");
        dir.Write("rootfs/real/passwd", "evil:x:777:777::/home/evil:/bin/sh\n");
        Directory.CreateDirectory(Path.Join(rootfs, "etc"));
        // An absolute link and a ../.. escape: both must land inside the rootfs.
        File.CreateSymbolicLink(Path.Join(rootfs, "etc", "passwd"), "/../../../real/passwd");
        File.CreateSymbolicLink(Path.Join(rootfs, "etc", "group"), "../../../outside/group");

        var user = await Resolve(rootfs, new ContainerSecurity { RunAsUsername = "evil" });
        Assert.Equal(777u, user.Uid);
        Assert.Null(RootfsPath.Resolve(rootfs, "/etc/group"));
    }

    [Fact]
    public void Parses_passwd_and_group_skipping_malformed_lines()
    {
        var passwd = UserResolver.ParsePasswd("a:x:1:2:gecos:/home/a:/bin/sh\nbroken\nb:x:notanumber:1::/:/x\n\nc:x:3:4\n");
        Assert.Equal(["a", "c"], passwd.Select(p => p.Name));
        var groups = UserResolver.ParseGroup("g:x:5:a,b\nbad:x\nh:x:6:\n");
        Assert.Equal(["a", "b"], groups[0].Members);
        Assert.Empty(groups[1].Members);
    }
}
