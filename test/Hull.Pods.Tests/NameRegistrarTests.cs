using Hull.Core;
using Hull.Pods.Index;

namespace Hull.Pods.Tests;

public sealed class NameRegistrarTests
{
    [Fact]
    public void A_reserved_name_is_refused_to_another_id_and_says_who_holds_it()
    {
        var names = new NameRegistrar("sandbox");
        names.Reserve("web_default_uid_0", "id1");
        names.Reserve("web_default_uid_0", "id1"); // same id: no-op
        var e = Assert.Throws<HullException>(() => names.Reserve("web_default_uid_0", "id2"));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Contains("is reserved for \"id1\"", e.Message);
    }

    [Fact]
    public void Only_the_holder_releases_a_name()
    {
        var names = new NameRegistrar("sandbox");
        names.Reserve("n", "id1");
        names.Release("n", "id2");
        Assert.Equal("id1", names.HolderOf("n"));
        names.Release("n", "id1");
        names.Reserve("n", "id2");
        Assert.Equal("id2", names.HolderOf("n"));
    }
}
