using Hull.Cdi;
using Hull.Core;
using Hull.Linux;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Tests.Spec;

public sealed class CdiEditsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<OciSpec> BuildAsync(ContainerConfig? container = null, SandboxContext? sandbox = null) =>
        await SpecFixtures.Builder().BuildAsync(SpecFixtures.Request(SpecFixtures.Rootfs(_dir), container, sandbox,
            new ImageConfig { Env = ["PATH=/usr/bin:/bin", "MODE=image"] }));

    // The devices of one spec file written to a CDI directory, resolved as hulld resolves them.
    private CdiInjection Resolve(string yaml, params string[] devices)
    {
        _dir.Write("cdi/spec.yaml", yaml);
        var snapshot = CdiSnapshot.Load([Path.Join(_dir.Path, "cdi")]);
        Assert.Empty(snapshot.Errors);
        return snapshot.Resolve(devices);
    }

    [Fact]
    public async Task No_devices_leave_the_spec_as_built()
    {
        var spec = await BuildAsync();
        Assert.Same(spec, CdiEdits.Apply(spec, CdiInjection.None));
    }

    [Fact]
    public async Task Env_replaces_the_same_key_in_place_and_appends_new_ones()
    {
        var built = await BuildAsync();
        var spec = CdiEdits.Apply(built, Resolve("""
            cdiVersion: 0.3.0
            kind: vendor.com/gpu
            devices:
              - name: gpu0
                containerEdits: {env: [MODE=cdi, VISIBLE_DEVICES=0]}
            """, "vendor.com/gpu=gpu0"));

        var before = built.Process!.Env!;
        Assert.Equal([.. before.Select(e => e == "MODE=image" ? "MODE=cdi" : e), "VISIBLE_DEVICES=0"], spec.Process!.Env!);
    }

    [Fact]
    public async Task A_device_node_is_added_with_its_cgroup_rule_and_the_process_owner()
    {
        var nullDevice = FileStatus.Get("/dev/null");
        var built = await BuildAsync(new ContainerConfig
        {
            Name = "app",
            Command = ["/bin/app"],
            Devices = [new ContainerDevice("/dev/cdi-null", "/dev/zero")],
            Security = new ContainerSecurity { RunAsUser = 1000, RunAsGroup = 1000 },
        });
        var spec = CdiEdits.Apply(built, Resolve("""
            cdiVersion: 0.5.0
            kind: vendor.com/null
            devices:
              - name: a
                containerEdits:
                  deviceNodes:
                    - {path: /dev/cdi-null, hostPath: /dev/null, permissions: rw}
                    - {path: /dev/cdi-fixed, type: c, major: 240, minor: 9, uid: 0, gid: 0, permissions: none}
            """, "vendor.com/null=a"));

        // The CRI device at the same path is replaced; the rules are appended after the builder's deny-all.
        var devices = spec.Linux!.Devices!;
        var node = Assert.Single(devices, d => d.Path == "/dev/cdi-null");
        Assert.Equal(new OciDevice { Type = "c", Path = "/dev/cdi-null", Major = nullDevice.RdevMajor, Minor = nullDevice.RdevMinor, FileMode = (uint)nullDevice.Permissions, Uid = 1000, Gid = 1000 }, node);
        Assert.Equal(new OciDevice { Type = "c", Path = "/dev/cdi-fixed", Major = 240, Minor = 9, Uid = 0, Gid = 0 }, devices.Single(d => d.Path == "/dev/cdi-fixed"));
        var rules = spec.Linux.Resources!.Devices!;
        Assert.Equal(new OciDeviceCgroup { Allow = false, Access = "rwm" }, rules[0]);
        Assert.Equal(new OciDeviceCgroup { Allow = true, Type = "c", Major = nullDevice.RdevMajor, Minor = nullDevice.RdevMinor, Access = "rw" }, rules[^2]);
        Assert.Equal(new OciDeviceCgroup { Allow = true, Type = "c", Major = 240, Minor = 9, Access = "" }, rules[^1]);
    }

    [Fact]
    public async Task Mounts_replace_the_same_destination_and_are_sorted_by_depth()
    {
        var spec = CdiEdits.Apply(await BuildAsync(), Resolve("""
            cdiVersion: 0.4.0
            kind: vendor.com/gpu
            containerEdits:
              mounts:
                - {hostPath: /usr/lib/vendor/libgpu.so, containerPath: /usr/lib/libgpu.so, options: [ro, nosuid, nodev, bind]}
            devices:
              - name: a
                containerEdits:
                  mounts:
                    - {hostPath: /run/vendor, containerPath: /sys/fs, options: [rbind]}
                    - {hostPath: /var/lib/vendor/shm, containerPath: "/dev//shm/", type: tmpfs, options: [size=1m]}
            """, "vendor.com/gpu=a"));

        var mounts = spec.Mounts!;
        Assert.Equal(mounts.Select(m => ContainerMounts.Depth(m.Destination)).Order(), mounts.Select(m => ContainerMounts.Depth(m.Destination)));
        var shm = Assert.Single(mounts, m => ContainerMounts.Clean(m.Destination) == "/dev/shm");
        Assert.Equal(("tmpfs", "/var/lib/vendor/shm"), (shm.Type, shm.Source));
        var lib = Assert.Single(mounts, m => m.Destination == "/usr/lib/libgpu.so");
        Assert.Equal(new OciMount { Destination = "/usr/lib/libgpu.so", Source = "/usr/lib/vendor/libgpu.so", Options = lib.Options }, lib);
        Assert.Equal(["ro", "nosuid", "nodev", "bind"], lib.Options!);
        // /sys/fs is mounted before the deeper default /sys/fs/cgroup, which it would otherwise hide.
        Assert.True(mounts.ToList().FindIndex(m => m.Destination == "/sys/fs") < mounts.ToList().FindIndex(m => m.Destination == "/sys/fs/cgroup"));
    }

    [Fact]
    public async Task In_a_user_namespace_bind_mounts_are_idmapped()
    {
        var sandbox = SpecFixtures.Request("/").Sandbox with
        {
            UserNamespace = new UserNamespace { UidMappings = [new OciIdMapping(0, 100000, 65536)], GidMappings = [new OciIdMapping(0, 100000, 65536)] },
        };
        var spec = CdiEdits.Apply(await BuildAsync(sandbox: sandbox), Resolve("""
            cdiVersion: 0.4.0
            kind: vendor.com/gpu
            devices:
              - name: a
                containerEdits:
                  mounts:
                    - {hostPath: /a, containerPath: /a, options: [ro, bind]}
                    - {hostPath: /b, containerPath: /b, options: [rbind]}
                    - {hostPath: /c, containerPath: /c, type: bind}
                    - {hostPath: /d, containerPath: /d, options: [bind, idmap]}
                    - {hostPath: /e, containerPath: /e, type: tmpfs}
            """, "vendor.com/gpu=a"));

        string[] Options(string destination) => spec.Mounts!.Single(m => m.Destination == destination).Options?.ToArray() ?? [];
        Assert.Equal(["ro", "bind", "idmap"], Options("/a"));
        Assert.Equal(["rbind", "ridmap"], Options("/b"));
        Assert.Equal(["idmap"], Options("/c"));
        Assert.Equal(["bind", "idmap"], Options("/d"));
        Assert.Empty(Options("/e"));
    }

    [Fact]
    public async Task Hooks_of_every_kind_go_to_their_list()
    {
        var spec = CdiEdits.Apply(await BuildAsync(), Resolve("""
            cdiVersion: 0.3.0
            kind: vendor.com/gpu
            devices:
              - name: a
                containerEdits:
                  hooks:
                    - {hookName: prestart, path: /bin/prestart}
                    - {hookName: createRuntime, path: /bin/create-runtime, args: [create-runtime, --x], env: [A=1], timeout: 3}
                    - {hookName: createContainer, path: /bin/create-container}
                    - {hookName: startContainer, path: /bin/start-container}
                    - {hookName: poststart, path: /bin/poststart}
                    - {hookName: poststop, path: /bin/poststop}
                    - {hookName: poststop, path: /bin/poststop2}
            """, "vendor.com/gpu=a"));

        var hooks = spec.Hooks!;
        Assert.Equal("/bin/prestart", Assert.Single(hooks.Prestart!).Path);
        Assert.Equal(new OciHook { Path = "/bin/create-runtime", Args = hooks.CreateRuntime![0].Args, Env = hooks.CreateRuntime[0].Env, Timeout = 3 }, Assert.Single(hooks.CreateRuntime));
        Assert.Equal(["create-runtime", "--x"], hooks.CreateRuntime[0].Args!);
        Assert.Equal("/bin/create-container", Assert.Single(hooks.CreateContainer!).Path);
        Assert.Equal("/bin/start-container", Assert.Single(hooks.StartContainer!).Path);
        Assert.Equal("/bin/poststart", Assert.Single(hooks.Poststart!).Path);
        Assert.Equal(["/bin/poststop", "/bin/poststop2"], hooks.Poststop!.Select(h => h.Path));
    }

    [Fact]
    public async Task Groups_intel_rdt_and_net_devices_are_set()
    {
        var built = await BuildAsync(new ContainerConfig
        {
            Name = "app",
            Command = ["/bin/app"],
            Security = new ContainerSecurity { RunAsUser = 1000, SupplementalGroups = [63] },
        });
        var spec = CdiEdits.Apply(built, Resolve("""
            cdiVersion: 1.1.0
            kind: vendor.com/gpu
            devices:
              - name: a
                containerEdits:
                  additionalGids: [63, 0, 44]
                  intelRdt: {closID: gpu, l3CacheSchema: "L3:0=ff", schemata: ["MB:0=50"], enableMonitoring: true}
                  netDevices: [{hostInterfaceName: ens1f0, name: net1}]
            """, "vendor.com/gpu=a"));

        var gids = spec.Process!.User.AdditionalGids!;
        Assert.Equal(1, gids.Count(g => g == 63));
        Assert.Equal(44u, gids[^1]);
        Assert.DoesNotContain(0u, gids.Skip(built.Process!.User.AdditionalGids!.Count));
        Assert.Equal(new OciIntelRdt { ClosId = "gpu", L3CacheSchema = "L3:0=ff", Schemata = spec.Linux!.IntelRdt!.Schemata, EnableMonitoring = true }, spec.Linux.IntelRdt);
        Assert.Equal(new OciNetDevice("net1"), spec.Linux.NetDevices!["ens1f0"]);

        string json = OciJson.Serialize(spec);
        Assert.Contains("\"intelRdt\":{\"closID\":\"gpu\",\"l3CacheSchema\":\"L3:0=ff\",\"schemata\":[\"MB:0=50\"],\"enableMonitoring\":true}", json);
        Assert.Contains("\"netDevices\":{\"ens1f0\":{\"name\":\"net1\"}}", json);
    }

    [Theory]
    [InlineData(CdiErrorKind.NotFound, ErrorKind.NotFound)]
    [InlineData(CdiErrorKind.InvalidArgument, ErrorKind.InvalidArgument)]
    [InlineData(CdiErrorKind.FailedPrecondition, ErrorKind.FailedPrecondition)]
    public void Cdi_errors_keep_their_kind_and_message(CdiErrorKind cdi, ErrorKind hull)
    {
        var e = CdiEdits.ToHullException(new CdiException(cdi, "CDI device \"a/b=c\" is not defined"));
        Assert.Equal((hull, "CDI device \"a/b=c\" is not defined"), (e.Kind, e.Message));
    }
}
