using System.Text;
using Hull.Images.Oci;
using Hull.Images.Verifiers;

namespace Hull.Images.Tests.Verifiers;

public sealed class DescriptorJsonTests
{
    private static string Json(Descriptor d) => Encoding.UTF8.GetString(DescriptorJson.Serialize(d));

    [Fact]
    public void Minimal_descriptor_has_the_three_required_fields_and_a_trailing_newline()
    {
        Assert.Equal("{\"mediaType\":\"\",\"digest\":\"\",\"size\":0}\n", Json(new Descriptor("", "", 0)));
    }

    [Fact]
    public void Empty_collections_are_omitted_like_go_omitempty()
    {
        var d = new Descriptor(MediaTypes.OciIndex, "sha256:ab", 7)
        {
            Annotations = new Dictionary<string, string>(),
            Urls = [],
        };
        Assert.Equal("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:ab\",\"size\":7}\n", Json(d));
    }

    [Fact]
    public void All_fields_follow_image_spec_names_and_order()
    {
        var d = new Descriptor(MediaTypes.OciManifest, "sha256:ab", 42)
        {
            Urls = ["https://example.com/blob"],
            Annotations = new Dictionary<string, string> { ["z"] = "last", ["a"] = "first" },
            Platform = new Platform("windows", "amd64") { OsVersion = "10.0.17763.1", OsFeatures = ["win32k"] },
        };
        Assert.Equal(
            "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:ab\",\"size\":42," +
            "\"urls\":[\"https://example.com/blob\"],\"annotations\":{\"a\":\"first\",\"z\":\"last\"}," +
            "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\",\"os.version\":\"10.0.17763.1\",\"os.features\":[\"win32k\"]}}\n",
            Json(d));
    }

    [Fact]
    public void Strings_are_escaped_as_go_does()
    {
        var d = new Descriptor("a\"b\\c\nd\te\u0001<>&\u2028é", "", 0);
        Assert.Equal("{\"mediaType\":\"a\\\"b\\\\c\\nd\\te\\u0001\\u003c\\u003e\\u0026\\u2028é\",\"digest\":\"\",\"size\":0}\n", Json(d));
    }
}
