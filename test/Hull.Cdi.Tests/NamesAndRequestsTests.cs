namespace Hull.Cdi.Tests;

public class NamesAndRequestsTests
{
    [Theory]
    [InlineData("vendor.com/class=name", "vendor.com", "class", "name")]
    [InlineData("nvidia.com/gpu=0", "nvidia.com", "gpu", "0")]
    [InlineData("nvidia.com/gpu=GPU-5a3f:mig-1", "nvidia.com", "gpu", "GPU-5a3f:mig-1")]
    [InlineData("a/b=c", "a", "b", "c")]
    public void Fully_qualified_names_split_into_vendor_class_and_name(string device, string vendor, string @class, string name)
    {
        Assert.True(CdiNames.TryParseQualified(device, out var parsed, out var reason), reason);
        Assert.Equal(new CdiDeviceName(vendor, @class, name), parsed);
        Assert.Equal(device, parsed.ToString());
    }

    [Theory]
    [InlineData("", "missing vendor")]
    [InlineData("/dev/null", "missing vendor")]
    [InlineData("gpu0", "missing vendor")]
    [InlineData("vendor.com=gpu0", "missing vendor")]
    [InlineData("vendor.com/class=", "missing vendor")]
    [InlineData("vendor.com/=x", "missing vendor")]
    [InlineData("1vendor.com/class=x", "invalid vendor")]
    [InlineData("vendor.com/cl@ss=x", "invalid class")]
    [InlineData("vendor.com/class=x y", "invalid character ' ' in device name")]
    [InlineData("vendor.com/class=-x", "should start with a letter or digit")]
    public void Malformed_names_are_rejected_with_the_reason(string device, string reason)
    {
        Assert.False(CdiNames.TryParseQualified(device, out _, out var why));
        Assert.Contains(reason, why);
    }

    [Fact]
    public void Annotation_requests_are_read_from_cdi_k8s_io_keys_only_in_key_order()
    {
        var annotations = new Dictionary<string, string>
        {
            ["cdi.k8s.io/zz-plugin_dev1"] = "vendor.com/gpu=2",
            ["cdi.k8s.io/aa-plugin_dev0"] = "vendor.com/gpu=0,vendor.com/nic=eth1",
            ["example.com/cdi.k8s.io"] = "not a device",
            ["io.kubernetes.cri.container-type"] = "container",
        };
        Assert.Equal(["vendor.com/gpu=0", "vendor.com/nic=eth1", "vendor.com/gpu=2"], CdiAnnotations.RequestedDevices(annotations));
    }

    [Theory]
    [InlineData("vendor.com/gpu=0, vendor.com/gpu=1", " vendor.com/gpu=1")]
    [InlineData("gpu0", "gpu0")]
    [InlineData("", "")]
    public void An_annotation_with_an_invalid_device_name_is_an_invalid_argument(string value, string bad)
    {
        var e = Assert.Throws<CdiException>(() => CdiAnnotations.RequestedDevices(new Dictionary<string, string> { ["cdi.k8s.io/p"] = value }));
        Assert.Equal(CdiErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"annotation \"cdi.k8s.io/p\" names an invalid CDI device \"{bad}\"", e.Message);
    }

    [Fact]
    public void Cri_devices_come_first_and_duplicates_collapse()
    {
        var devices = CdiRequest.Devices(
            ["vendor.com/gpu=1", "vendor.com/gpu=0", "vendor.com/gpu=1"],
            new Dictionary<string, string> { ["cdi.k8s.io/a"] = "vendor.com/gpu=0,vendor.com/gpu=3", ["cdi.k8s.io/b"] = "vendor.com/gpu=3" });
        Assert.Equal(["vendor.com/gpu=1", "vendor.com/gpu=0", "vendor.com/gpu=3"], devices);
    }
}
