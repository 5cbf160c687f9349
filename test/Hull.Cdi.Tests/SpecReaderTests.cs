using System.Text;

namespace Hull.Cdi.Tests;

public class SpecReaderTests
{
    private const string FullJson = """
        {
          "cdiVersion": "1.1.0",
          "kind": "vendor.com/gpu",
          "annotations": { "vendor.com/driver": "550.1" },
          "containerEdits": {
            "env": ["VENDOR_DRIVER=550"],
            "hooks": [{ "hookName": "createContainer", "path": "/usr/bin/vendor-hook", "args": ["vendor-hook", "ldconfig"], "env": ["A=1"], "timeout": 5 }],
            "mounts": [{ "hostPath": "/usr/lib/libvendor.so", "containerPath": "/usr/lib/libvendor.so", "options": ["ro", "nosuid", "bind"], "type": "bind" }],
            "intelRdt": { "closID": "gpu", "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50", "schemata": ["L2:0=f"], "enableMonitoring": true },
            "additionalGids": [44, 0]
          },
          "devices": [
            {
              "name": "0",
              "annotations": { "index": "0" },
              "containerEdits": {
                "deviceNodes": [{ "path": "/dev/gpu0", "hostPath": "/dev/vendor/gpu0", "type": "c", "major": 195, "minor": 7, "fileMode": 438, "permissions": "rw", "uid": 1000, "gid": 44 }],
                "netDevices": [{ "hostInterfaceName": "ens1f0", "name": "gpu-net0" }]
              }
            }
          ]
        }
        """;

    private const string FullYaml = """
        ---
        cdiVersion: 1.1.0
        kind: vendor.com/gpu
        annotations:
          vendor.com/driver: "550.1"
        containerEdits:
          env:
            - VENDOR_DRIVER=550
          hooks:
            - hookName: createContainer
              path: /usr/bin/vendor-hook
              args: [vendor-hook, ldconfig]
              env: [A=1]
              timeout: 5
          mounts:
            - hostPath: /usr/lib/libvendor.so
              containerPath: /usr/lib/libvendor.so
              options: [ro, nosuid, bind]
              type: bind
          intelRdt:
            closID: gpu
            l3CacheSchema: "L3:0=ff"
            memBwSchema: "MB:0=50"
            schemata: ["L2:0=f"]
            enableMonitoring: true
          additionalGids: [44, 0]
        devices:
          - name: "0"
            annotations:
              index: "0"
            containerEdits:
              deviceNodes:
                - path: /dev/gpu0
                  hostPath: /dev/vendor/gpu0
                  type: c
                  major: 195
                  minor: 7
                  fileMode: 0666
                  permissions: rw
                  uid: 1000
                  gid: 44
              netDevices:
                - hostInterfaceName: ens1f0
                  name: gpu-net0
        """;

    private static CdiSpec Read(string text, string path) => SpecReader.Parse(Encoding.UTF8.GetBytes(text), path);

    private static CdiFormatException ReadFails(string text, string path = "x.yaml") =>
        Assert.Throws<CdiFormatException>(() => Read(text, path));

    [Fact]
    public void Json_and_yaml_spellings_of_a_spec_with_every_field_read_the_same()
    {
        var json = Read(FullJson, "vendor.json");
        var yaml = Read(FullYaml, "vendor.yaml");

        foreach (var spec in new[] { json, yaml })
        {
            Assert.Equal("1.1.0", spec.CdiVersion);
            Assert.Equal("vendor.com/gpu", spec.Kind);
            Assert.Equal("550.1", spec.Annotations!["vendor.com/driver"]);
            Assert.Equal(["VENDOR_DRIVER=550"], spec.ContainerEdits.Env);
            var hook = Assert.Single(spec.ContainerEdits.Hooks);
            Assert.Equal(new CdiHook { HookName = "createContainer", Path = "/usr/bin/vendor-hook", Args = hook.Args, Env = hook.Env, Timeout = 5 }, hook);
            Assert.Equal(["vendor-hook", "ldconfig"], hook.Args);
            Assert.Equal(["A=1"], hook.Env);
            var mount = Assert.Single(spec.ContainerEdits.Mounts);
            Assert.Equal(("/usr/lib/libvendor.so", "/usr/lib/libvendor.so", "bind"), (mount.HostPath, mount.ContainerPath, mount.Type));
            Assert.Equal(["ro", "nosuid", "bind"], mount.Options);
            var rdt = spec.ContainerEdits.IntelRdt!;
            Assert.Equal(("gpu", "L3:0=ff", "MB:0=50", true), (rdt.ClosId, rdt.L3CacheSchema, rdt.MemBwSchema, rdt.EnableMonitoring));
            Assert.Equal(["L2:0=f"], rdt.Schemata!);
            Assert.Equal([44u, 0u], spec.ContainerEdits.AdditionalGids);

            var device = Assert.Single(spec.Devices);
            Assert.Equal("0", device.Name);
            Assert.Equal("0", device.Annotations!["index"]);
            var node = Assert.Single(device.ContainerEdits.DeviceNodes);
            Assert.Equal(new CdiDeviceNode
            {
                Path = "/dev/gpu0", HostPath = "/dev/vendor/gpu0", Type = "c", Major = 195, Minor = 7, FileMode = 438, Permissions = "rw", Uid = 1000, Gid = 44,
            }, node);
            Assert.Equal(new CdiNetDevice { HostInterfaceName = "ens1f0", Name = "gpu-net0" }, Assert.Single(device.ContainerEdits.NetDevices));
        }
    }

    [Fact]
    public void An_unknown_field_is_an_error_naming_its_path()
    {
        var e = ReadFails("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes:\n        - path: /dev/x\n          hostpth: /dev/y\n");
        Assert.Equal("devices[0].containerEdits.deviceNodes[0].hostpth", e.Field);
        Assert.Equal("unknown field \"hostpth\"", e.Reason);
    }

    [Fact]
    public void A_value_of_the_wrong_type_is_an_error_naming_its_path()
    {
        var e = ReadFails("""{"cdiVersion":"0.3.0","kind":"a.com/b","devices":[{"name":"x","containerEdits":{"deviceNodes":[{"path":"/dev/x","major":"195"}]}}]}""", "x.json");
        Assert.Equal("devices[0].containerEdits.deviceNodes[0].major", e.Field);
        Assert.Contains("expected an integer, got the string \"195\"", e.Reason);

        e = ReadFails("""{"cdiVersion":"0.3.0","kind":"a.com/b","devices":{"name":"x"}}""", "x.json");
        Assert.Equal("devices", e.Field);
        Assert.Contains("expected a list", e.Reason);

        e = ReadFails("cdiVersion: 0.7.0\nkind: a.com/b\ncontainerEdits:\n  additionalGids: [-1]\ndevices: []\n");
        Assert.Equal("containerEdits.additionalGids[0]", e.Field);
        Assert.Contains("out of range", e.Reason);
    }

    [Fact]
    public void Field_names_match_without_regard_to_case_as_in_go()
    {
        var spec = Read("""{"CDIVersion":"0.3.0","Kind":"a.com/b","Devices":[{"Name":"x","ContainerEdits":{"Env":["A=1"]}}]}""", "x.json");
        Assert.Equal(("0.3.0", "a.com/b", "x"), (spec.CdiVersion, spec.Kind, spec.Devices[0].Name));
    }

    [Fact]
    public void Yaml_scalars_resolve_as_go_yaml_does()
    {
        // A number where a string is wanted is taken as text; fileMode 0644 is octal; null is absent.
        var spec = Read("cdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n  - name: 7\n    containerEdits:\n      deviceNodes:\n        - path: /dev/x\n          fileMode: 0644\n          uid: ~\n", "x.yaml");
        Assert.Equal("7", spec.Devices[0].Name);
        Assert.Equal(420u, spec.Devices[0].ContainerEdits.DeviceNodes[0].FileMode);
        Assert.Null(spec.Devices[0].ContainerEdits.DeviceNodes[0].Uid);

        // A quoted number is a string, which an integer field does not take.
        var e = ReadFails("cdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes:\n        - path: /dev/x\n          major: \"1\"\n");
        Assert.Equal("devices[0].containerEdits.deviceNodes[0].major", e.Field);
    }

    [Fact]
    public void A_plain_yes_or_y_is_a_boolean_as_in_yaml_1_1_so_a_name_field_reads_true()
    {
        var spec = Read("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: y\n  - name: \"y\"\n", "x.yaml");
        Assert.Equal(["true", "y"], spec.Devices.Select(d => d.Name));
    }

    [Fact]
    public void Intel_rdt_schemata_present_but_empty_is_told_from_absent()
    {
        Assert.NotNull(Read("cdiVersion: 1.1.0\nkind: a.com/b\ncontainerEdits:\n  intelRdt:\n    schemata: []\ndevices: []\n", "x.yaml").ContainerEdits.IntelRdt!.Schemata);
        Assert.Null(Read("cdiVersion: 1.1.0\nkind: a.com/b\ncontainerEdits:\n  intelRdt:\n    closID: a\ndevices: []\n", "x.yaml").ContainerEdits.IntelRdt!.Schemata);
    }

    [Theory]
    [InlineData("", "x.yaml", "no spec data")]
    [InlineData("   \n", "x.yaml", "no spec data")]
    [InlineData("null", "x.json", "no spec data")]
    [InlineData("kind: [unclosed\n", "x.yaml", "not valid YAML: line 2")]
    [InlineData("{\"kind\": }", "x.json", "not valid JSON: line 1")]
    [InlineData("- a\n- b\n", "x.yaml", "expected an object")]
    public void Text_that_is_no_spec_is_an_error_for_the_whole_file(string text, string path, string reason)
    {
        var e = ReadFails(text, path);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Only_the_first_yaml_document_is_read()
    {
        var spec = Read("cdiVersion: 0.3.0\nkind: a.com/b\ndevices: []\n---\nkind: other.com/c\n", "x.yaml");
        Assert.Equal("a.com/b", spec.Kind);
    }
}
