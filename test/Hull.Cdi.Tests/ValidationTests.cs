namespace Hull.Cdi.Tests;

public class ValidationTests
{
    private const string Header = "kind: vendor.com/gpu\n";

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.4.0")]
    [InlineData("0.5.0")]
    [InlineData("0.6.0")]
    [InlineData("0.7.0")]
    [InlineData("0.8.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    [InlineData("v0.6.0")]
    public void Every_released_version_from_0_3_0_is_read(string version)
    {
        var spec = Specs.Valid(Specs.Yaml(version, "vendor.com/gpu", ["a"]));
        Assert.Equal("vendor.com/gpu=a", Assert.Single(spec.QualifiedNames));
    }

    [Theory]
    [InlineData("0.1.0", "must be at least v0.3.0")]
    [InlineData("0.2.0", "must be at least v0.3.0")]
    [InlineData("0.9.0", "invalid version \"0.9.0\"")]
    [InlineData("1.2.0", "invalid version \"1.2.0\"")]
    [InlineData("", "invalid version \"\"")]
    public void Versions_before_0_3_0_and_unknown_ones_are_rejected(string version, string reason)
    {
        var error = Assert.Single(Specs.Errors(Specs.Yaml(version, "vendor.com/gpu", ["a"])));
        Assert.Equal("cdiVersion", error.Field);
        Assert.Contains(reason, error.Reason);
    }

    public static TheoryData<string, string, string> FieldsAndTheirVersions => new()
    {
        { "0.4.0", "devices:\n  - name: a\n    containerEdits:\n      mounts: [{hostPath: /a, containerPath: /a, type: bind}]\n", "devices[0].containerEdits.mounts[0].type" },
        { "0.5.0", "devices:\n  - name: a\n    containerEdits:\n      deviceNodes: [{path: /dev/a, hostPath: /dev/b}]\n", "devices[0].containerEdits.deviceNodes[0].hostPath" },
        { "0.5.0", "devices:\n  - name: \"0\"\n    containerEdits: {env: [A=1]}\n", "devices[0].name" },
        { "0.6.0", "annotations: {a: b}\ndevices:\n  - name: a\n    containerEdits: {env: [A=1]}\n", "annotations" },
        { "0.6.0", "devices:\n  - name: a\n    annotations: {a: b}\n    containerEdits: {env: [A=1]}\n", "devices[0].annotations" },
        { "0.7.0", "containerEdits:\n  intelRdt: {closID: a}\ndevices:\n  - name: a\n    containerEdits: {env: [A=1]}\n", "containerEdits.intelRdt" },
        { "0.7.0", "devices:\n  - name: a\n    containerEdits: {additionalGids: [5]}\n", "devices[0].containerEdits.additionalGids" },
        { "1.1.0", "devices:\n  - name: a\n    containerEdits: {intelRdt: {schemata: []}}\n", "devices[0].containerEdits.intelRdt.schemata" },
        { "1.1.0", "devices:\n  - name: a\n    containerEdits: {intelRdt: {enableMonitoring: true}}\n", "devices[0].containerEdits.intelRdt.enableMonitoring" },
        { "1.1.0", "containerEdits:\n  netDevices: [{hostInterfaceName: eth1, name: net1}]\ndevices:\n  - name: a\n    containerEdits: {env: [A=1]}\n", "containerEdits.netDevices" },
    };

    [Theory]
    [MemberData(nameof(FieldsAndTheirVersions))]
    public void A_field_needs_the_version_that_added_it(string version, string body, string field)
    {
        string previous = CdiVersions.Known[CdiVersions.Known.ToList().IndexOf(version) + 1];
        Specs.Valid($"cdiVersion: \"{version}\"\n{Header}{body}");

        var error = Assert.Single(Specs.Errors($"cdiVersion: \"{previous}\"\n{Header}{body}"));
        Assert.Equal("cdiVersion", error.Field);
        Assert.Contains($"({field})", error.Reason);
        Assert.Contains($"must be at least v{version}", error.Reason);
    }

    [Fact]
    public void A_dot_in_the_class_needs_0_6_0()
    {
        Specs.Valid(Specs.Yaml("0.6.0", "vendor.com/gpu.v2", ["a"]));
        var error = Assert.Single(Specs.Errors(Specs.Yaml("0.5.0", "vendor.com/gpu.v2", ["a"])));
        Assert.Contains("a dot in the class name (kind)", error.Reason);
    }

    [Theory]
    [InlineData("gpu", "kind", "invalid vendor: empty name")]
    [InlineData("vendor.com/", "kind", "invalid vendor: empty name")]
    [InlineData("/gpu", "kind", "invalid vendor: empty name")]
    [InlineData("1vendor.com/gpu", "kind", "should start with a letter")]
    [InlineData("vendor.com/gpu/x", "kind", "invalid character '/'")]
    [InlineData("vendor.com/gpu-", "kind", "should end with a letter or digit")]
    [InlineData("vendor_com/gpu", null, null)]
    [InlineData("foo.bar.baz/foo-bar123.B_az", null, null)]
    public void The_kind_follows_the_vendor_and_class_grammar(string kind, string? field, string? reason)
    {
        var errors = Specs.Errors(Specs.Yaml("0.6.0", kind, ["a"]));
        if (field is null)
        {
            Assert.Empty(errors);
            return;
        }
        var error = Assert.Single(errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(reason!, error.Reason);
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("gpu0", true)]
    [InlineData("mig-1g.5gb:0", true)]
    [InlineData("A_b-c.d:e", true)]
    [InlineData("-a", false)]
    [InlineData("a-", false)]
    [InlineData("a/b", false)]
    [InlineData("a=b", false)]
    [InlineData("a b", false)]
    public void Device_names_follow_their_grammar(string name, bool valid)
    {
        var errors = Specs.Errors($"cdiVersion: 0.6.0\nkind: vendor.com/gpu\ndevices:\n  - name: \"{name}\"\n    containerEdits: {{env: [A=1]}}\n");
        if (valid) Assert.Empty(errors);
        else Assert.Equal("devices[0].name", Assert.Single(errors).Field);
    }

    [Fact]
    public void A_device_defined_twice_in_a_file_is_an_error()
    {
        var error = Assert.Single(Specs.Errors(Specs.Yaml("vendor.com/gpu", "a", "b", "a")));
        Assert.Equal("devices[2].name", error.Field);
        Assert.Contains("defined twice (also devices[0])", error.Reason);
    }

    [Fact]
    public void A_spec_without_devices_and_a_device_without_edits_are_errors()
    {
        Assert.Equal("devices", Assert.Single(Specs.Errors("cdiVersion: 0.3.0\nkind: a.com/b\ndevices: []\n")).Field);
        var error = Assert.Single(Specs.Errors("cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: a\n"));
        Assert.Equal("devices[0].containerEdits", error.Field);
        Assert.Contains("no edits", error.Reason);
    }

    [Theory]
    [InlineData("env: [NOEQUALS]", "devices[0].containerEdits.env[0]", "invalid environment variable")]
    [InlineData("env: [\"=x\"]", "devices[0].containerEdits.env[0]", "invalid environment variable")]
    [InlineData("deviceNodes: [{path: \"\"}]", "devices[0].containerEdits.deviceNodes[0].path", "empty device path")]
    [InlineData("deviceNodes: [{path: /dev/a, type: x}]", "devices[0].containerEdits.deviceNodes[0].type", "invalid type \"x\"")]
    [InlineData("deviceNodes: [{path: /dev/a, permissions: rwx}]", "devices[0].containerEdits.deviceNodes[0].permissions", "invalid permissions \"rwx\"")]
    [InlineData("hooks: [{hookName: prestop, path: /bin/true}]", "devices[0].containerEdits.hooks[0].hookName", "invalid hook name \"prestop\"")]
    [InlineData("hooks: [{hookName: poststop, path: \"\"}]", "devices[0].containerEdits.hooks[0].path", "empty path")]
    [InlineData("hooks: [{hookName: poststop, path: /bin/true, env: [X]}]", "devices[0].containerEdits.hooks[0].env[0]", "invalid environment variable")]
    [InlineData("mounts: [{hostPath: \"\", containerPath: /a}]", "devices[0].containerEdits.mounts[0].hostPath", "empty host path")]
    [InlineData("mounts: [{hostPath: /a, containerPath: \"\"}]", "devices[0].containerEdits.mounts[0].containerPath", "empty container path")]
    [InlineData("intelRdt: {closID: ..}", "devices[0].containerEdits.intelRdt.closID", "invalid closID")]
    [InlineData("intelRdt: {closID: a/b}", "devices[0].containerEdits.intelRdt.closID", "invalid closID")]
    [InlineData("netDevices: [{hostInterfaceName: eth0, name: \"\"}]", "devices[0].containerEdits.netDevices[0].name", "empty interface name")]
    [InlineData("netDevices: [{hostInterfaceName: eth0, name: a}, {hostInterfaceName: eth0, name: b}]", "devices[0].containerEdits.netDevices[1].hostInterfaceName", "duplicate host interface")]
    [InlineData("netDevices: [{hostInterfaceName: eth0, name: a}, {hostInterfaceName: eth1, name: a}]", "devices[0].containerEdits.netDevices[1].name", "duplicate interface name")]
    public void Invalid_edits_are_reported_with_their_field(string edits, string field, string reason)
    {
        var error = Assert.Single(Specs.Errors($"cdiVersion: 1.1.0\nkind: a.com/b\ndevices:\n  - name: a\n    containerEdits: {{{edits}}}\n"));
        Assert.Equal(field, error.Field);
        Assert.Contains(reason, error.Reason);
    }

    [Fact]
    public void Valid_edits_of_every_kind_pass()
    {
        Specs.Valid("""
            cdiVersion: 1.1.0
            kind: a.com/b
            devices:
              - name: a
                containerEdits:
                  env: [A=1, "B="]
                  deviceNodes: [{path: /dev/a, type: c, major: 1, minor: 3, permissions: none}, {path: /dev/p, type: p, permissions: rw}]
                  hooks: [{hookName: prestart, path: /a}, {hookName: createRuntime, path: /a}, {hookName: createContainer, path: /a},
                          {hookName: startContainer, path: /a}, {hookName: poststart, path: /a}, {hookName: poststop, path: /a}]
                  mounts: [{hostPath: /a, containerPath: /b, options: [ro]}]
                  intelRdt: {closID: "/"}
                  additionalGids: [1]
                  netDevices: [{hostInterfaceName: eth1, name: net1}]
            """);
    }

    [Theory]
    [InlineData("vendor.com/driver", true)]
    [InlineData("Index", true)]
    [InlineData("a.b_c-d", true)]
    [InlineData("-bad", false)]
    [InlineData("bad key", false)]
    [InlineData("Vendor_Com/x", false)]
    [InlineData("a/b/c", false)]
    [InlineData("/x", false)]
    public void Annotation_keys_follow_kubernetes_rules(string key, bool valid)
    {
        var errors = Specs.Errors($"cdiVersion: 0.6.0\nkind: a.com/b\nannotations: {{\"{key}\": v}}\ndevices:\n  - name: a\n    annotations: {{\"{key}\": v}}\n    containerEdits: {{env: [A=1]}}\n");
        if (valid)
        {
            Assert.Empty(errors);
            return;
        }
        Assert.Equal([$"annotations.{key}", $"devices[0].annotations.{key}"], errors.Select(e => e.Field).Distinct());
    }

    [Fact]
    public void Annotations_larger_than_256_KiB_are_rejected()
    {
        string big = new('x', CdiAnnotations.TotalSizeLimit);
        var error = Assert.Single(Specs.Errors($"cdiVersion: 0.6.0\nkind: a.com/b\nannotations: {{k: {big}}}\ndevices:\n  - name: a\n    containerEdits: {{env: [A=1]}}\n"));
        Assert.Equal("annotations", error.Field);
        Assert.Contains("more than the limit", error.Reason);
    }

    [Fact]
    public void Every_problem_of_a_file_is_reported_and_names_the_file()
    {
        var errors = Specs.Errors("cdiVersion: 0.3.0\nkind: gpu\ndevices:\n  - name: -a\n    containerEdits: {env: [X]}\n", "/etc/cdi/bad.yaml");
        Assert.Equal(["kind", "devices[0].name", "devices[0].containerEdits.env[0]"], errors.Select(e => e.Field));
        Assert.All(errors, e => Assert.StartsWith("CDI spec \"/etc/cdi/bad.yaml\": ", e.ToString()));
    }
}
