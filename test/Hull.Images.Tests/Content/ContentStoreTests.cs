using System.Security.Cryptography;
using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Oci;

namespace Hull.Images.Tests.Content;

public sealed class ContentStoreTests : IDisposable
{
    private readonly TestRoot _root = new();

    public void Dispose() => _root.Dispose();

    private Task<ContentStore> OpenAsync(ContentStoreOptions? options = null) => ContentStore.OpenAsync(_root.Path, _root.Metadata, options);

    private static (byte[] Data, Descriptor Descriptor) Blob(int size, int seed = 1)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return (data, new Descriptor(MediaTypes.OciLayerGzip, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data)), size));
    }

    [Fact]
    public async Task Ingest_and_commit_stores_the_blob_under_its_digest_and_indexes_it()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(100_000);
        await using (var writer = await store.OpenWriterAsync("layer-1", desc, default))
        {
            Assert.Equal(0, writer.Offset);
            await writer.WriteAsync(data);
            var info = await writer.CommitAsync(new Dictionary<string, string> { ["a"] = "b" });
            Assert.Equal(desc.Digest, info.Digest);
            Assert.Equal(desc.Size, info.Size);
            Assert.Equal(MediaTypes.OciLayerGzip, info.MediaType);
            Assert.Equal("b", info.Labels["a"]);
        }

        string blob = _root.Sub("content", "blobs", "sha256", desc.Digest["sha256:".Length..]);
        Assert.Equal(data, await File.ReadAllBytesAsync(blob));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root.Sub("content", "ingest")));
        await using (var read = await store.OpenReadAsync(desc.Digest, default))
        {
            var copy = new MemoryStream();
            await read.CopyToAsync(copy);
            Assert.Equal(data, copy.ToArray());
        }
        Assert.Equal(desc.Digest, Assert.Single(await store.WalkAsync(default)).Digest);
        Assert.Equal(desc.Size, (await store.InfoAsync(desc.Digest, default)).Size);
    }

    [Fact]
    public async Task Digest_mismatch_fails_naming_both_digests_and_deletes_the_ingest()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(4096);
        data[100] ^= 0xFF;
        var writer = await store.OpenWriterAsync("layer-1", desc, default);
        await writer.WriteAsync(data);
        var e = await Assert.ThrowsAsync<HullException>(() => writer.CommitAsync());
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"expected {desc.Digest}, got sha256:{Convert.ToHexStringLower(SHA256.HashData(data))}", e.Message);
        Assert.Empty(await store.ListIngestsAsync(default));
        Assert.Null(await store.TryInfoAsync(desc.Digest, default));
        await using var again = await store.OpenWriterAsync("layer-1", desc, default); // the ref is free again
        Assert.Equal(0, again.Offset);
    }

    [Fact]
    public async Task A_commit_cancelled_once_its_blob_is_in_place_still_indexes_it_so_a_collection_can_find_it()
    {
        // A pull's sibling layer failing cancels the token while this commit is between its rename and its
        // index row (the clock is read there). The row must still be written: collections walk the index.
        using var cancel = new CancellationTokenSource();
        var time = new ClockThatRunsAnAction();
        var store = await OpenAsync(new ContentStoreOptions { Time = time });
        var (data, desc) = Blob(4096);
        await using var writer = await store.OpenWriterAsync("layer-1", desc, default);
        await writer.WriteAsync(data);
        time.OnRead = cancel.Cancel;

        var info = await writer.CommitAsync(null, cancel.Token);

        Assert.True(cancel.IsCancellationRequested);
        Assert.Equal(desc.Digest, info.Digest);
        Assert.Equal(desc.Digest, Assert.Single(await store.WalkAsync(default)).Digest);
    }

    [Fact]
    public async Task A_commit_cancelled_before_it_starts_stores_nothing_and_keeps_the_ingest_for_a_resume()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(4096);
        await using var writer = await store.OpenWriterAsync("layer-1", desc, default);
        await writer.WriteAsync(data);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer.CommitAsync(null, new CancellationToken(canceled: true)));

        Assert.Empty(await store.WalkAsync(default));
        Assert.False(File.Exists(_root.Sub("content", "blobs", "sha256", desc.Digest[7..])));
        Assert.Equal(desc.Size, Assert.Single(await store.ListIngestsAsync(default)).Offset);
    }

    /// <summary>The system clock, running <see cref="OnRead"/> each time it is read.</summary>
    private sealed class ClockThatRunsAnAction : TimeProvider
    {
        public Action? OnRead { get; set; }

        public override DateTimeOffset GetUtcNow()
        {
            OnRead?.Invoke();
            return base.GetUtcNow();
        }
    }

    [Fact]
    public async Task Writing_more_than_the_expected_size_fails_at_once()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(1000);
        var writer = await store.OpenWriterAsync("layer-1", desc with { Size = 999 }, default);
        var e = await Assert.ThrowsAsync<HullException>(async () => await writer.WriteAsync(data));
        Assert.Contains("size mismatch: expected 999 bytes", e.Message);
        Assert.Contains(desc.Digest, e.Message);
        Assert.Empty(await store.ListIngestsAsync(default));
    }

    [Fact]
    public async Task An_interrupted_ingest_resumes_at_its_offset_even_after_a_restart()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(300_000);
        await using (var writer = await store.OpenWriterAsync("layer-1", desc, default))
            await writer.WriteAsync(data.AsMemory(0, 123_456)); // the connection drops here

        var status = Assert.Single(await store.ListIngestsAsync(default));
        Assert.Equal(("layer-1", desc.Digest, 123_456L, false), (status.Ref, status.ExpectedDigest, status.Offset, status.InUse));

        _root.ReopenMetadata(); // and hulld restarts
        store = await OpenAsync();
        await using var resumed = await store.OpenWriterAsync("layer-1", desc, default);
        Assert.True(resumed.Resumed);
        Assert.Equal(123_456, resumed.Offset); // the fetcher asks for Range: bytes=123456-
        await resumed.WriteAsync(data.AsMemory(123_456));
        var info = await resumed.CommitAsync(); // the rehashed prefix plus the rest gives the right digest
        Assert.Equal(desc.Digest, info.Digest);
    }

    [Fact]
    public async Task Reset_starts_over_when_the_server_ignores_the_range()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(10_000);
        await using (var writer = await store.OpenWriterAsync("layer-1", desc, default))
            await writer.WriteAsync(data.AsMemory(0, 5000));
        await using var resumed = await store.OpenWriterAsync("layer-1", desc, default);
        await resumed.ResetAsync(default);
        Assert.Equal(0, resumed.Offset);
        await resumed.WriteAsync(data);
        Assert.Equal(desc.Digest, (await resumed.CommitAsync()).Digest);
    }

    [Fact]
    public async Task A_second_writer_of_the_same_ref_waits_and_is_told_the_blob_exists()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(50_000);
        var first = await store.OpenWriterAsync("layer-1", desc, default);
        var second = store.OpenWriterAsync("layer-1", desc, default);
        await Task.Delay(50);
        Assert.False(second.IsCompleted); // waiting for the first download
        Assert.True(Assert.Single(await store.ListIngestsAsync(default)).InUse);

        await first.WriteAsync(data);
        await first.CommitAsync();
        var e = await Assert.ThrowsAsync<HullException>(() => second);
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Contains(desc.Digest, e.Message);
    }

    [Fact]
    public async Task A_waiting_writer_takes_over_an_ingest_that_was_dropped()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(50_000);
        var first = await store.OpenWriterAsync("layer-1", desc, default);
        var second = store.OpenWriterAsync("layer-1", desc, default);
        await first.WriteAsync(data.AsMemory(0, 20_000));
        await first.DisposeAsync(); // the first pull failed
        await using var taken = await second;
        Assert.Equal(20_000, taken.Offset);
        await taken.WriteAsync(data.AsMemory(20_000));
        await taken.CommitAsync();
    }

    [Fact]
    public async Task Opening_a_writer_for_present_content_is_AlreadyExists()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(10);
        await using (var w = await store.OpenWriterAsync("a", desc, default))
        {
            await w.WriteAsync(data);
            await w.CommitAsync();
        }
        var e = await Assert.ThrowsAsync<HullException>(() => store.OpenWriterAsync("b", desc, default));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
    }

    [Fact]
    public async Task Delete_removes_blob_and_index_row()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(10);
        await using (var w = await store.OpenWriterAsync("a", desc, default))
        {
            await w.WriteAsync(data);
            await w.CommitAsync();
        }
        await store.DeleteAsync(desc.Digest, default);
        Assert.Empty(await store.WalkAsync(default));
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<HullException>(() => store.InfoAsync(desc.Digest, default))).Kind);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<HullException>(() => store.OpenReadAsync(desc.Digest, default))).Kind);
        var e = await Assert.ThrowsAsync<HullException>(() => store.DeleteAsync(desc.Digest, default));
        Assert.Equal($"content {desc.Digest} not found", e.Message);
    }

    [Fact]
    public async Task Labels_can_be_replaced()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(10);
        await using (var w = await store.OpenWriterAsync("a", desc, default))
        {
            await w.WriteAsync(data);
            await w.CommitAsync();
        }
        var info = await store.SetLabelsAsync(desc.Digest, new Dictionary<string, string> { ["containerd.io/gc.ref.content"] = "x" }, default);
        Assert.Equal("x", info.Labels["containerd.io/gc.ref.content"]);
    }

    [Fact]
    public async Task Opening_removes_stale_and_malformed_ingests_and_reindexes_blobs_found_on_disk()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(1000);
        var (fresh, freshDesc) = Blob(1000, seed: 2);
        await using (var w = await store.OpenWriterAsync("stale", desc, default)) await w.WriteAsync(data.AsMemory(0, 10));
        await using (var w = await store.OpenWriterAsync("fresh", freshDesc, default)) await w.WriteAsync(fresh.AsMemory(0, 10));
        string staleData = Path.Combine(store.IngestDirectory("stale"), "data");
        File.SetLastWriteTimeUtc(staleData, DateTime.UtcNow.AddDays(-2));
        Directory.CreateDirectory(_root.Sub("content", "ingest", "torn")); // a crash while creating an ingest

        // A blob renamed into place right before a crash, never indexed.
        var (orphan, orphanDesc) = Blob(77, seed: 3);
        Directory.CreateDirectory(_root.Sub("content", "blobs", "sha256"));
        await File.WriteAllBytesAsync(_root.Sub("content", "blobs", "sha256", orphanDesc.Digest[7..]), orphan);

        store = await OpenAsync();
        Assert.Equal("fresh", Assert.Single(await store.ListIngestsAsync(default)).Ref);
        Assert.False(Directory.Exists(_root.Sub("content", "ingest", "torn")));
        var info = await store.InfoAsync(orphanDesc.Digest, default);
        Assert.Equal(77, info.Size);
        Assert.Null(info.MediaType);
    }

    [Fact]
    public async Task Abort_deletes_an_interrupted_ingest_but_not_one_in_use()
    {
        var store = await OpenAsync();
        var (data, desc) = Blob(100);
        var writer = await store.OpenWriterAsync("a", desc, default);
        await writer.WriteAsync(data.AsMemory(0, 10));
        Assert.Equal(ErrorKind.FailedPrecondition, (await Assert.ThrowsAsync<HullException>(() => store.AbortAsync("a", default))).Kind);
        await writer.DisposeAsync();
        await store.AbortAsync("a", default);
        Assert.Empty(await store.ListIngestsAsync(default));
    }
}
