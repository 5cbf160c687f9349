using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Core.Tests.Deprecations;

public sealed class SqliteDeprecationStoreTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Load_of_a_new_store_is_empty()
    {
        using var store = MetadataStore.Open(_dir.Path);
        Assert.Empty(new SqliteDeprecationStore(store).Load());
    }

    [Fact]
    public void Upsert_increments_occurrences_and_keeps_the_last_occurrence()
    {
        using var store = MetadataStore.Open(_dir.Path);
        var deprecations = new SqliteDeprecationStore(store);
        var later = T0.AddMinutes(5).AddTicks(7); // sub-microsecond precision must round-trip

        deprecations.Save(new DeprecationWarning("io.containerd.x", "old message", T0, 1));
        deprecations.Save(new DeprecationWarning("io.containerd.x", "new message", later, 2));

        Assert.Equal([new DeprecationWarning("io.containerd.x", "new message", later, 2)], deprecations.Load());
    }

    [Fact]
    public void Late_save_of_an_older_state_does_not_go_backwards()
    {
        // The registry saves outside its lock, so two saves of one id can arrive out of order.
        using var store = MetadataStore.Open(_dir.Path);
        var deprecations = new SqliteDeprecationStore(store);
        deprecations.Save(new DeprecationWarning("x", "second", T0.AddSeconds(1), 2));
        deprecations.Save(new DeprecationWarning("x", "first", T0, 1));

        Assert.Equal([new DeprecationWarning("x", "second", T0.AddSeconds(1), 2)], deprecations.Load());
    }

    [Fact]
    public void Offsets_are_normalised_to_the_same_instant()
    {
        using var store = MetadataStore.Open(_dir.Path);
        var deprecations = new SqliteDeprecationStore(store);
        var local = new DateTimeOffset(2025, 1, 2, 5, 4, 5, TimeSpan.FromHours(2));
        deprecations.Save(new DeprecationWarning("x", "m", local, 1));

        var loaded = Assert.Single(deprecations.Load());
        Assert.Equal(local, loaded.LastOccurrence);
        Assert.Equal(TimeSpan.Zero, loaded.LastOccurrence.Offset);
    }

    [Fact]
    public void Registry_with_sqlite_store_keeps_warnings_across_restarts()
    {
        var clock = new ManualClock(T0);
        using (var store = MetadataStore.Open(_dir.Path))
        {
            var registry = new DeprecationRegistry(new SqliteDeprecationStore(store), NullLogger.Instance, clock);
            registry.Record("a.first", "message a");
            clock.Advance(TimeSpan.FromSeconds(10));
            registry.Record("a.first", "message a");
            registry.Record("b.second", "message b");
        }

        clock.Advance(TimeSpan.FromHours(1));
        using (var store = MetadataStore.Open(_dir.Path))
        {
            var registry = new DeprecationRegistry(new SqliteDeprecationStore(store), NullLogger.Instance, clock);
            Assert.Equal(
                [
                    new DeprecationWarning("a.first", "message a", T0.AddSeconds(10), 2),
                    new DeprecationWarning("b.second", "message b", T0.AddSeconds(10), 1),
                ],
                registry.Snapshot());

            // Counting continues from the persisted value.
            registry.Record("a.first", "message a");
            Assert.Equal(new DeprecationWarning("a.first", "message a", clock.GetUtcNow(), 3), registry.Snapshot()[0]);
            Assert.Equal(3, new SqliteDeprecationStore(store).Load()[0].Occurrences);
        }
    }

    [Fact]
    public void Store_failure_does_not_fail_the_request_that_records()
    {
        var failing = new FailingStore();
        var registry = new DeprecationRegistry(failing, NullLogger.Instance, new ManualClock(T0));

        registry.Record("x", "m");
        registry.Record("x", "m");

        Assert.Equal(2, failing.SaveAttempts);
        Assert.Equal([new DeprecationWarning("x", "m", T0, 2)], registry.Snapshot());
    }

    [Fact]
    public void Store_that_cannot_load_starts_empty()
    {
        var registry = new DeprecationRegistry(new FailingStore(), NullLogger.Instance);
        Assert.Empty(registry.Snapshot());
    }

    [Fact]
    public void Disposed_store_does_not_fail_the_request_that_records()
    {
        var store = MetadataStore.Open(_dir.Path);
        var registry = new DeprecationRegistry(new SqliteDeprecationStore(store), NullLogger.Instance);
        store.Dispose();

        registry.Record("x", "m");
        Assert.Equal(1, Assert.Single(registry.Snapshot()).Occurrences);
    }

    [Fact]
    public async Task Concurrent_records_from_many_threads_persist_the_right_counts()
    {
        const int Threads = 8, PerThread = 500, Ids = 4;
        using (var store = MetadataStore.Open(_dir.Path))
        {
            var deprecations = new SqliteDeprecationStore(store);
            var registry = new DeprecationRegistry(deprecations, NullLogger.Instance);
            using var start = new Barrier(Threads + 1);
            var threads = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < PerThread; i++) registry.Record($"id.{(t + i) % Ids}", "m");
            }, TaskCreationOptions.LongRunning)).ToArray();
            // Readers running alongside must not disturb the writers (nor fail themselves).
            var reader = Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                while (!threads.All(t => t.IsCompleted)) Assert.True(deprecations.Load().Count <= Ids);
            }, TaskCreationOptions.LongRunning);

            await Task.WhenAll([.. threads, reader]);
            Assert.All(registry.Snapshot(), w => Assert.Equal(Threads * PerThread / Ids, w.Occurrences));
        }

        using (var store = MetadataStore.Open(_dir.Path))
        {
            var persisted = new SqliteDeprecationStore(store).Load();
            Assert.Equal(Enumerable.Range(0, Ids).Select(i => $"id.{i}"), persisted.Select(w => w.Id));
            Assert.All(persisted, w => Assert.Equal(Threads * PerThread / Ids, w.Occurrences));
        }
    }

    private sealed class FailingStore : IDeprecationStore
    {
        public int SaveAttempts;

        public IReadOnlyList<DeprecationWarning> Load() => throw new IOException("disk on fire");

        public void Save(DeprecationWarning warning)
        {
            SaveAttempts++;
            throw new IOException("disk on fire");
        }
    }
}
