using Hull.Images.Oci;
using Hull.Images.Store;
using Hull.Images.Tests.Content;

// Not Hull.Images.Tests.Store: that namespace would hide Hull.Images.Store from test code that writes Store.ImageRecord.
namespace Hull.Images.Tests.Stores;

public sealed class ImageStoreTests : IDisposable
{
    private const string Config = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string OtherConfig = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private const string Manifest = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    private const string Index = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
    private const string Chain = "sha256:5555555555555555555555555555555555555555555555555555555555555555";

    private static readonly DateTimeOffset Created = new(2024, 5, 6, 7, 8, 9, 123, TimeSpan.Zero);

    private readonly TestRoot _root = new();

    public void Dispose() => _root.Dispose();

    private static ImageRecord Record(string name, string config = Config, IReadOnlyDictionary<string, string>? labels = null) => new(
        name,
        new Descriptor(MediaTypes.OciIndex, Index, 1234),
        Manifest,
        config,
        Chain,
        "overlayfs",
        987_654,
        labels ?? new Dictionary<string, string>(),
        Created,
        Created.AddSeconds(1));

    [Fact]
    public async Task Put_then_get_round_trips_every_field()
    {
        var store = new ImageStore(_root.Metadata);
        var record = Record("docker.io/library/busybox:latest", labels: new Dictionary<string, string> { [ImageLabels.Pinned] = "pinned", ["a"] = "b" });
        await store.PutAsync([record], default);

        var read = await store.GetAsync(record.Name, default);
        Assert.NotNull(read);
        Assert.Equal(record.Name, read.Name);
        Assert.Equal(record.Target, read.Target);
        Assert.Equal((Manifest, Config, Chain, "overlayfs", 987_654L), (read.ManifestDigest, read.ConfigDigest, read.ChainId, read.Snapshotter, read.Size));
        Assert.Equal(record.Labels.OrderBy(l => l.Key), read.Labels.OrderBy(l => l.Key));
        Assert.Equal((Created, Created.AddSeconds(1)), (read.Created, read.Updated));
        Assert.Equal(Config, read.Id);
        Assert.True(read.Pinned);
        Assert.Null(await store.GetAsync("docker.io/library/absent:latest", default));
    }

    [Fact]
    public async Task The_list_is_read_once_and_read_again_after_each_put_or_delete()
    {
        var store = new ImageStore(_root.Metadata);
        await store.PutAsync([Record("example.com/a:1")], default);
        var first = await store.ListAsync(default);
        Assert.Same(first, await store.ListAsync(default));

        await store.PutAsync([Record("example.com/b:1", OtherConfig)], default);
        var afterPut = await store.ListAsync(default);
        Assert.Equal(["example.com/a:1", "example.com/b:1"], afterPut.Select(r => r.Name));
        Assert.Equal(OtherConfig, (await store.GetAsync("example.com/b:1", default))!.ConfigDigest);

        Assert.Equal(1, await store.DeleteAsync(["example.com/a:1"], default));
        Assert.Equal(["example.com/b:1"], (await store.ListAsync(default)).Select(r => r.Name));
        Assert.Null(await store.GetAsync("example.com/a:1", default));
    }

    [Fact]
    public async Task Records_survive_reopening_the_metadata_store()
    {
        await new ImageStore(_root.Metadata).PutAsync([Record("example.com/a:1")], default);
        _root.ReopenMetadata();
        var read = Assert.Single(await new ImageStore(_root.Metadata).ListAsync(default));
        Assert.Equal(("example.com/a:1", Config), (read.Name, read.ConfigDigest));
    }

    [Fact]
    public async Task List_is_ordered_by_name_and_ById_groups_the_names_of_one_image()
    {
        var store = new ImageStore(_root.Metadata);
        await store.PutAsync([Record("example.com/b:1"), Record($"example.com/b@{Index}"), Record("example.com/a:1", OtherConfig)], default);

        Assert.Equal(["example.com/a:1", "example.com/b:1", $"example.com/b@{Index}"], (await store.ListAsync(default)).Select(r => r.Name));
        Assert.Equal(["example.com/b:1", $"example.com/b@{Index}"], (await store.ByIdAsync(Config, default)).Select(r => r.Name));
        Assert.Equal(["example.com/a:1"], (await store.ByIdAsync(OtherConfig, default)).Select(r => r.Name));
        Assert.Empty(await store.ByIdAsync(Chain, default));
    }

    [Fact]
    public async Task Putting_an_existing_name_repoints_it_and_keeps_its_creation_time()
    {
        var store = new ImageStore(_root.Metadata);
        await store.PutAsync([Record("example.com/a:latest")], default);
        var later = Created.AddHours(1);
        await store.PutAsync([Record("example.com/a:latest", OtherConfig) with { Created = later, Updated = later }], default);

        var read = Assert.Single(await store.ListAsync(default));
        Assert.Equal(OtherConfig, read.ConfigDigest);
        Assert.Equal(Created, read.Created);
        Assert.Equal(later, read.Updated);
        Assert.Empty(await store.ByIdAsync(Config, default));
    }

    [Fact]
    public async Task Delete_removes_the_given_names_and_counts_those_that_existed()
    {
        var store = new ImageStore(_root.Metadata);
        await store.PutAsync([Record("example.com/a:1"), Record("example.com/a:2"), Record("example.com/c:1", OtherConfig)], default);

        Assert.Equal(2, await store.DeleteAsync(["example.com/a:1", "example.com/a:2", "example.com/never:1"], default));
        Assert.Equal(["example.com/c:1"], (await store.ListAsync(default)).Select(r => r.Name));
        Assert.Equal(0, await store.DeleteAsync(["example.com/a:1"], default));
        Assert.Equal(0, await store.DeleteAsync([], default));
    }

    [Fact]
    public async Task A_put_of_several_names_is_all_or_nothing()
    {
        var store = new ImageStore(_root.Metadata);
        await store.PutAsync([Record("example.com/a:1")], default);
        // The second record cannot be written (a NULL name violates the table), so the first is rolled back too.
        await Assert.ThrowsAnyAsync<Exception>(() => store.PutAsync([Record("example.com/new:1"), Record(null!)], default));
        Assert.Equal(["example.com/a:1"], (await store.ListAsync(default)).Select(r => r.Name));
    }
}
