using Hull.Linux;

namespace Hull.Cdi.Tests;

public sealed class ResolutionTests : TwoSpecDirectories
{
    private CdiSnapshot Load() => CdiSnapshot.Load([_etc, _run]);

    private CdiSnapshot LoadOne(string yaml)
    {
        _tmp.Write(_etc, "spec.yaml", yaml);
        var snapshot = Load();
        Assert.Empty(snapshot.Errors);
        return snapshot;
    }

    [Fact]
    public void No_devices_resolve_to_no_edits()
    {
        Assert.Same(CdiInjection.None, Load().Resolve([]));
        Assert.True(CdiInjection.None.IsEmpty);
    }

    [Fact]
    public void Spec_edits_come_once_before_the_first_device_of_the_spec_then_device_edits_in_request_order()
    {
        _tmp.Write(_etc, "gpu.yaml", "cdiVersion: 0.5.0\nkind: vendor.com/gpu\ncontainerEdits: {env: [GPU_SPEC=1]}\ndevices:\n" +
                                   "  - {name: \"0\", containerEdits: {env: [GPU=0]}}\n  - {name: \"1\", containerEdits: {env: [GPU=1]}}\n");
        string nic = _tmp.Write(_run, "nic.yaml", "cdiVersion: 0.3.0\nkind: vendor.com/nic\ncontainerEdits: {env: [NIC_SPEC=1]}\ndevices:\n" +
                                   "  - {name: eth1, containerEdits: {env: [NIC=eth1]}}\n");
        var injection = Load().Resolve(["vendor.com/gpu=1", "vendor.com/nic=eth1", "vendor.com/gpu=0"]);

        Assert.Equal(["GPU_SPEC=1", "GPU=1", "NIC_SPEC=1", "NIC=eth1", "GPU=0"], injection.Env);
        Assert.Equal(["vendor.com/gpu=1", "vendor.com/nic=eth1", "vendor.com/gpu=0"], injection.Devices.Select(d => d.Name));
        Assert.Equal(nic, injection.Devices[1].SpecFile);
    }

    [Fact]
    public void A_device_node_takes_type_numbers_and_mode_from_the_host_node()
    {
        var nullStatus = FileStatus.Get("/dev/null");
        var node = Assert.Single(LoadOne("cdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/cdi-null, hostPath: /dev/null}]\n")
            .Resolve(["a.com/b=x"]).DeviceNodes);

        Assert.Equal(new CdiResolvedDeviceNode("/dev/cdi-null", "/dev/null", "c", nullStatus.RdevMajor, nullStatus.RdevMinor, (uint)nullStatus.Permissions, "rwm", null, null), node);
        Assert.True(node.NeedsCgroupRule);
    }

    [Fact]
    public void The_host_path_defaults_to_the_container_path_and_the_spec_owner_mode_and_permissions_are_kept()
    {
        var node = Assert.Single(LoadOne("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/null, fileMode: 0600, uid: 7, gid: 8, permissions: rw}]\n")
            .Resolve(["a.com/b=x"]).DeviceNodes);
        Assert.Equal(("/dev/null", "c", 1L, 3L, 384u, "rw", 7u, 8u), (node.HostPath, node.Type, node.Major, node.Minor, node.FileMode!.Value, node.CgroupAccess, node.Uid!.Value, node.Gid!.Value));
    }

    [Fact]
    public void A_fully_described_node_needs_no_host_node()
    {
        var node = Assert.Single(LoadOne("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{path: /dev/not-on-this-host, type: c, major: 240, minor: 2, permissions: none}]\n")
            .Resolve(["a.com/b=x"]).DeviceNodes);
        Assert.Equal(new CdiResolvedDeviceNode("/dev/not-on-this-host", "/dev/not-on-this-host", "c", 240, 2, null, "", null, null), node);
    }

    [Fact]
    public void A_fifo_gets_its_type_from_the_host_and_no_cgroup_rule()
    {
        string fifo = Path.Combine(_tmp.Root, "fifo");
        FileNodes.CreateFifo(fifo, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var node = Assert.Single(LoadOne($"cdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{{path: /dev/fifo, hostPath: {fifo}}}]\n")
            .Resolve(["a.com/b=x"]).DeviceNodes);
        Assert.Equal(("p", 0L, 0L, 384u), (node.Type, node.Major, node.Minor, node.FileMode!.Value));
        Assert.False(node.NeedsCgroupRule);
    }

    [Theory]
    [InlineData("{path: /dev/hull-no-such-device}", "host device \"/dev/hull-no-such-device\" (for \"/dev/hull-no-such-device\") does not exist")]
    [InlineData("{path: /dev/x, hostPath: /etc/hostname}", "host path \"/etc/hostname\" (for \"/dev/x\") is not a device node")]
    [InlineData("{path: /dev/x, hostPath: /dev/null, type: b}", "\"/dev/x\" is of type \"b\", but the host device \"/dev/null\" is of type \"c\"")]
    public void A_host_node_that_is_missing_or_different_is_a_failed_precondition(string node, string message)
    {
        var snapshot = LoadOne($"cdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes: [{node}]\n");
        var e = Assert.Throws<CdiException>(() => snapshot.Resolve(["a.com/b=x"]));
        Assert.Equal(CdiErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal($"CDI device \"a.com/b=x\": {message}", e.Message);
    }

    [Fact]
    public void An_unknown_device_is_not_found_naming_it_the_directories_and_the_invalid_specs()
    {
        _tmp.Write(_etc, "gpu.yaml", Specs.Yaml("vendor.com/gpu", "a"));
        string bad = _tmp.Write(_run, "bad.yaml", "cdiVersion: 9\n");
        var e = Assert.Throws<CdiException>(() => Load().Resolve(["vendor.com/gpu=a", "vendor.com/gpu=b", "other.com/x=y"]));
        Assert.Equal(CdiErrorKind.NotFound, e.Kind);
        Assert.Equal($"CDI devices \"vendor.com/gpu=b\", \"other.com/x=y\" are not defined by any valid spec in {_etc}, {_run} (specs with errors, which were skipped: {bad})", e.Message);
    }

    [Fact]
    public void An_unqualified_device_name_is_an_invalid_argument()
    {
        var e = Assert.Throws<CdiException>(() => Load().Resolve(["gpu0"]));
        Assert.Equal(CdiErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("CDI device \"gpu0\" is not a fully-qualified name", e.Message);
    }

    [Fact]
    public void Every_edit_kind_is_collected_gids_once_and_the_last_intel_rdt_wins()
    {
        var snapshot = LoadOne("""
            cdiVersion: 1.1.0
            kind: a.com/b
            containerEdits:
              additionalGids: [0, 44]
              intelRdt: {closID: spec}
              mounts: [{hostPath: /usr/lib/a.so, containerPath: /usr/lib/a.so, options: [ro, bind]}]
            devices:
              - name: x
                containerEdits:
                  hooks: [{hookName: createContainer, path: /bin/hook, args: [hook, x]}, {hookName: poststop, path: /bin/cleanup}]
                  additionalGids: [44, 45]
                  intelRdt: {closID: x, schemata: ["L3:0=f"], enableMonitoring: true}
                  netDevices: [{hostInterfaceName: eth1, name: net1}]
              - name: "y"
                containerEdits:
                  mounts: [{hostPath: /opt/y, containerPath: /opt/y, type: tmpfs}]
            """);
        var injection = snapshot.Resolve(["a.com/b=x", "a.com/b=y"]);

        Assert.Equal([44u, 45u], injection.AdditionalGids);
        Assert.Equal("x", injection.IntelRdt!.ClosId);
        Assert.Equal(["/usr/lib/a.so", "/opt/y"], injection.Mounts.Select(m => m.ContainerPath));
        Assert.Equal(["createContainer", "poststop"], injection.Hooks.Select(h => h.HookName));
        Assert.Equal(("eth1", "net1"), (injection.NetDevices[0].HostInterfaceName, injection.NetDevices[0].Name));

        string text = injection.Describe();
        Assert.Contains("mount      /usr/lib/a.so from /usr/lib/a.so [ro,bind]\n", text);
        Assert.Contains("hook       createContainer /bin/hook args [hook x]\n", text);
        Assert.Contains("groups     44 45\n", text);
        Assert.Contains("intelRdt   closID=x schemata=L3:0=f enableMonitoring\n", text);
        Assert.Contains("netDevice  eth1 as net1\n", text);
    }

    [Fact]
    public void A_one_device_preview_shows_the_spec_and_device_edits()
    {
        var spec = Specs.Valid("cdiVersion: 0.3.0\nkind: a.com/b\ncontainerEdits: {env: [S=1]}\ndevices:\n  - {name: x, containerEdits: {env: [X=1], deviceNodes: [{path: /dev/null}]}}\n");
        string text = spec.Preview("x").Describe();
        Assert.Equal("env        S=1\nenv        X=1\n", text[..(2 * 15)]);
        Assert.Contains("device     /dev/null (c 1:3, from /dev/null, mode 666, cgroup rwm)\n", text);
    }
}
