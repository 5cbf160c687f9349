using Hull.Core;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

/// <summary>Mount planning for a pod with its own user namespace, and the binds Hull makes for runc (pure parts).</summary>
public class UserNamespaceMountsTests
{
    private static readonly OciIdMapping PodMap = new(0, 100000, 65536);
    private static readonly OciIdMapping OwnMap = new(0, 200000, 1000);

    private static ContainerSpecRequest InUserNamespacePod(TempDirectory dir, NamespaceRef network, params ContainerMount[] mounts)
    {
        var sandbox = SpecFixtures.Request("/").Sandbox with
        {
            Network = network,
            HostsPath = dir.Write("pod/hosts", "127.0.0.1 localhost\n"),
            UserNamespace = new UserNamespace { Path = "/run/hull/ns/user/p", UidMappings = [PodMap], GidMappings = [PodMap] },
        };
        return SpecFixtures.Request(SpecFixtures.Rootfs(dir), new ContainerConfig { Name = "app", Command = ["/app"], Mounts = mounts }, sandbox);
    }

    [Fact]
    public void Every_bind_of_a_user_namespace_pod_is_idmapped_with_the_pods_mappings_unless_it_has_its_own()
    {
        using var dir = new TempDirectory();
        var request = InUserNamespacePod(dir, NamespaceRef.New,
            new ContainerMount { ContainerPath = "/data", HostPath = dir.Dir("data") },
            new ContainerMount { ContainerPath = "/own", HostPath = dir.Dir("own"), UidMappings = [OwnMap], GidMappings = [OwnMap] });
        var plan = ContainerMounts.Plan(request, new SpecBuilderOptions(), SpecFixtures.Host());

        OciMount Bind(string destination) => plan.Mounts.Single(m => m.Destination == destination);
        Assert.Equal([PodMap], Bind("/data").UidMappings);
        Assert.Equal([PodMap], Bind("/etc/hosts").GidMappings);
        Assert.Equal([OwnMap], Bind("/own").UidMappings);
        Assert.Equal("sysfs", Bind("/sys").Type); // its own network namespace: sysfs as usual
    }

    [Fact]
    public void A_user_namespace_pod_on_the_host_network_gets_the_hosts_sys_recursively_read_only()
    {
        using var dir = new TempDirectory();
        var plan = ContainerMounts.Plan(InUserNamespacePod(dir, NamespaceRef.Host), new SpecBuilderOptions(), SpecFixtures.Host());
        var sys = plan.Mounts.Single(m => m.Destination == "/sys");
        Assert.Equal(("bind", "/sys"), (sys.Type, sys.Source));
        Assert.Contains("rro", sys.Options!);
    }

    [Fact]
    public void A_mount_with_uid_but_no_gid_mappings_is_refused()
    {
        using var dir = new TempDirectory();
        var request = SpecFixtures.Request(SpecFixtures.Rootfs(dir), new ContainerConfig
        {
            Name = "app", Command = ["/app"],
            Mounts = [new ContainerMount { ContainerPath = "/half", HostPath = dir.Dir("half"), UidMappings = [OwnMap] }],
        });
        var e = Assert.Throws<HullException>(() => ContainerMounts.Plan(request, new SpecBuilderOptions(), SpecFixtures.Host()));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("\"/half\"", e.Message);
    }

    [Fact]
    public void Idmapped_and_rro_binds_are_made_by_hull_and_handed_to_runc_as_plain_binds()
    {
        using var dir = new TempDirectory();
        var spec = new OciSpec
        {
            Mounts =
            [
                new OciMount { Destination = "/proc", Type = "proc", Source = "proc" },
                new OciMount { Destination = "/data", Type = "bind", Source = dir.Dir("data"), Options = ["rbind", "rprivate", "rw"], UidMappings = [PodMap], GidMappings = [PodMap] },
                new OciMount { Destination = "/ro", Type = "bind", Source = dir.Dir("ro"), Options = ["rbind", "rprivate", "rro"] },
            ],
        };
        var (rewritten, work) = PreparedMounts.Plan(spec, "/b/mounts");

        Assert.Equal(["/data", "/ro"], work.Select(w => w.Destination));
        Assert.Equal(["rbind", "rw", "uidmap=0:100000:65536", "gidmap=0:100000:65536"], work[0].Mount.Options);
        Assert.Equal(["rbind", "rro"], work[1].Mount.Options);
        Assert.Equal("/proc", rewritten.Mounts![0].Destination);
        var data = rewritten.Mounts[1];
        Assert.Equal(("/b/mounts/1", null), (data.Source, data.UidMappings));
        Assert.Equal(["rbind", "rprivate"], data.Options);
        Assert.DoesNotContain("rro", rewritten.Mounts[2].Options!);
    }

    [Theory]
    [InlineData(UserNamespaceMode.Pod, 1, 0, "exactly one gid mapping")]
    [InlineData(UserNamespaceMode.Pod, 1, 2, "exactly one gid mapping")]
    [InlineData(UserNamespaceMode.Node, 1, 1, "takes no mappings")]
    [InlineData(UserNamespaceMode.Container, 1, 1, "not supported")]
    public void Bad_user_namespace_options_are_invalid_arguments_naming_the_pod(UserNamespaceMode mode, int uids, int gids, string message)
    {
        var options = new UserNamespaceOptions(mode, Enumerable.Repeat(PodMap, uids).ToList(), Enumerable.Repeat(PodMap, gids).ToList());
        var e = Assert.Throws<HullException>(() => options.Validate("pod sandbox \"p\""));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("pod sandbox \"p\"", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData(1u, 100000u, 65536u, "does not map container uid 0")]
    [InlineData(0u, 100000u, 0u, "length 0")]
    [InlineData(0u, 4294967000u, 65536u, "runs past")]
    public void A_pod_mapping_must_map_root_and_fit(uint container, uint host, uint size, string message)
    {
        var options = new UserNamespaceOptions(UserNamespaceMode.Pod, [new OciIdMapping(container, host, size)], [PodMap]);
        var e = Assert.Throws<HullException>(() => options.Validate("pod"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_container_must_have_its_pods_user_namespace()
    {
        var pod = new UserNamespaceOptions(UserNamespaceMode.Pod, [PodMap], [PodMap]);
        UserNamespaceOptions.EnsureContainerMatchesPod(pod, pod with { }, "app", "p");
        var e = Assert.Throws<HullException>(() => UserNamespaceOptions.EnsureContainerMatchesPod(pod, null, "app", "p"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("container \"app\"", e.Message);
    }
}
