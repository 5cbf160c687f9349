using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Microsoft.Data.Sqlite;

namespace Hull.Core.Tests.Metadata;

public sealed class MetadataStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string DbPath(string root) => System.IO.Path.Combine(root, MetadataStore.FileName);

    /// <summary>Reads the database with a plain connection, outside the store.</summary>
    private static T Raw<T>(string dbPath, string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dbPath, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (T)Convert.ChangeType(command.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void RawExecute(string dbPath, string sql)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dbPath, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(MetadataSession session, string sql) => Convert.ToInt64(session.Command(sql).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Open_creates_root_directory_and_schema_from_scratch()
    {
        var root = _dir.Sub("var/lib/hull");
        using (var store = MetadataStore.Open(root))
        {
            Assert.Equal(DbPath(root), store.Path);
            Assert.Equal(MetadataSchema.LatestVersion, store.SchemaVersion);
            Assert.Equal(1, store.Read(s => Scalar(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'deprecations'")));
        }
        Assert.Equal(MetadataSchema.LatestVersion, Raw<int>(DbPath(root), "PRAGMA user_version"));
        Assert.Equal(MetadataSchema.ApplicationId, Raw<int>(DbPath(root), "PRAGMA application_id"));
        Assert.Equal("wal", Raw<string>(DbPath(root), "PRAGMA journal_mode"));
    }

    [Fact]
    public void New_database_file_is_readable_by_owner_only()
    {
        using var store = MetadataStore.Open(_dir.Path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.Path));
    }

    [Fact]
    public void Connections_use_durable_and_safe_pragmas()
    {
        using var store = MetadataStore.Open(_dir.Path, busyTimeout: TimeSpan.FromSeconds(7));
        var onWriter = store.Write(s => (Scalar(s, "PRAGMA synchronous"), Scalar(s, "PRAGMA foreign_keys"), Scalar(s, "PRAGMA busy_timeout")));
        var onReader = store.Read(s => (Scalar(s, "PRAGMA synchronous"), Scalar(s, "PRAGMA foreign_keys"), Scalar(s, "PRAGMA busy_timeout")));
        // synchronous: 2 = FULL.
        Assert.Equal((2L, 1L, 7000L), onWriter);
        Assert.Equal((2L, 1L, 7000L), onReader);
    }

    [Fact]
    public void Reopening_keeps_committed_data()
    {
        using (var store = MetadataStore.Open(_dir.Path))
            new SqliteDeprecationStore(store).Save(new DeprecationWarning("a.b", "gone", DateTimeOffset.UnixEpoch.AddDays(1), 3));

        using (var store = MetadataStore.Open(_dir.Path))
        {
            var loaded = Assert.Single(new SqliteDeprecationStore(store).Load());
            Assert.Equal(new DeprecationWarning("a.b", "gone", DateTimeOffset.UnixEpoch.AddDays(1), 3), loaded);
        }
    }

    [Fact]
    public void Database_with_newer_schema_version_is_refused()
    {
        var path = DbPath(_dir.Path);
        MetadataStore.Open(_dir.Path).Dispose();
        RawExecute(path, $"PRAGMA user_version = {MetadataSchema.LatestVersion + 5}");

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(_dir.Path));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains($"\"{path}\"", e.Message);
        Assert.Contains($"schema version {MetadataSchema.LatestVersion + 5} is newer than version {MetadataSchema.LatestVersion}", e.Message);
        // Refusing must not touch the file.
        Assert.Equal(MetadataSchema.LatestVersion + 5, Raw<int>(path, "PRAGMA user_version"));
    }

    [Fact]
    public void File_that_is_not_a_database_is_refused_with_file_and_reason()
    {
        var path = DbPath(_dir.Path);
        File.WriteAllText(path, string.Concat(Enumerable.Repeat("this is not a database\n", 400)));

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(_dir.Path));
        Assert.Equal(ErrorKind.Unavailable, e.Kind);
        Assert.Equal(path, e.Path);
        Assert.StartsWith($"metadata store \"{path}\": the file is not a SQLite database", e.Message);
    }

    [Fact]
    public void Database_path_that_is_a_directory_is_refused()
    {
        var path = DbPath(_dir.Path);
        Directory.CreateDirectory(path);

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(_dir.Path));
        Assert.Equal($"metadata store \"{path}\": it is a directory, not a database file", e.Message);
    }

    [Fact]
    public void Root_that_is_a_file_is_refused()
    {
        var root = _dir.Sub("root");
        File.WriteAllText(root, "");

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(root));
        Assert.Contains($"\"{DbPath(root)}\"", e.Message);
        Assert.Contains("is a file, not a directory", e.Message);
    }

    [Fact]
    public void SQLite_database_of_another_application_is_refused()
    {
        var path = DbPath(_dir.Path);
        RawExecute(path, "CREATE TABLE notes (x TEXT)");

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(_dir.Path));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("Hull did not create", e.Message);
    }

    [Fact]
    public void Migrations_apply_in_order_and_only_once()
    {
        Migration[] v1 = [new(1, "one", "CREATE TABLE t1 (x INTEGER);")];
        Migration[] v2 = [.. v1, new(2, "two", "CREATE TABLE t2 (y INTEGER); INSERT INTO t1 VALUES (42);")];

        using (var store = MetadataStore.Open(_dir.Path, v1))
            Assert.Equal(1, store.SchemaVersion);
        using (var store = MetadataStore.Open(_dir.Path, v2))
            Assert.Equal(2, store.SchemaVersion);
        // Reopening at version 2 must not run step 2 again (it would insert a second row).
        using (var store = MetadataStore.Open(_dir.Path, v2))
        {
            Assert.Equal(2, store.SchemaVersion);
            Assert.Equal(1, store.Read(s => Scalar(s, "SELECT count(*) FROM t1")));
        }
    }

    [Fact]
    public void Failing_migration_is_rolled_back_and_reported()
    {
        Migration[] v1 = [new(1, "one", "CREATE TABLE t1 (x INTEGER);")];
        Migration[] broken = [.. v1, new(2, "broken", "CREATE TABLE t2 (y INTEGER); INSERT INTO no_such_table VALUES (1);")];
        MetadataStore.Open(_dir.Path, v1).Dispose();

        var e = Assert.Throws<MetadataStoreException>(() => MetadataStore.Open(_dir.Path, broken));
        Assert.Contains("schema migration 2 (broken) failed", e.Message);
        Assert.Contains("no such table", e.Message);

        var path = DbPath(_dir.Path);
        Assert.Equal(1, Raw<int>(path, "PRAGMA user_version"));
        Assert.Equal(0, Raw<int>(path, "SELECT count(*) FROM sqlite_schema WHERE name = 't2'"));
    }

    [Fact]
    public void Migration_list_with_a_gap_is_rejected()
    {
        Migration[] gap = [new(1, "one", "SELECT 1;"), new(3, "three", "SELECT 1;")];
        var e = Assert.Throws<InvalidOperationException>(() => MetadataStore.Open(_dir.Path, gap));
        Assert.Contains("has version 3, expected 2", e.Message);
    }

    [Fact]
    public void Shipped_migrations_are_numbered_without_gaps()
    {
        MetadataSchema.Validate(MetadataSchema.Migrations);
        Assert.Equal(MetadataSchema.Migrations.Count, MetadataSchema.LatestVersion);
    }

    [Fact]
    public void Write_that_throws_is_rolled_back_and_the_store_stays_usable()
    {
        using var store = MetadataStore.Open(_dir.Path);
        Assert.Throws<InvalidOperationException>(() => store.Write(s =>
        {
            s.Command("INSERT INTO deprecations VALUES ('x', 'm', 0, 1)").ExecuteNonQuery();
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal(0, store.Read(s => Scalar(s, "SELECT count(*) FROM deprecations")));

        store.Write(s => s.Command("INSERT INTO deprecations VALUES ('x', 'm', 0, 1)").ExecuteNonQuery());
        Assert.Equal(1, store.Read(s => Scalar(s, "SELECT count(*) FROM deprecations")));
    }

    [Fact]
    public void Read_refuses_to_write()
    {
        using var store = MetadataStore.Open(_dir.Path);
        var e = Assert.Throws<SqliteException>(() => store.Read(s => s.Command("INSERT INTO deprecations VALUES ('x', 'm', 0, 1)").ExecuteNonQuery()));
        Assert.Contains("readonly", e.Message);
        // The reader connection went back to the pool in a clean state.
        Assert.Equal(0, store.Read(s => Scalar(s, "SELECT count(*) FROM deprecations")));
    }

    [Fact]
    public async Task WriteAsync_waiting_for_the_writer_can_be_cancelled()
    {
        using var store = MetadataStore.Open(_dir.Path);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var holder = Task.Run(() => store.Write(_ => { holding.Set(); release.Wait(); }));
        holding.Wait();

        using var cts = new CancellationTokenSource();
        var waiting = store.WriteAsync(s => s.Command("INSERT INTO deprecations VALUES ('late', 'm', 0, 1)").ExecuteNonQuery(), cts.Token);
        Assert.False(waiting.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);

        release.Set();
        await holder;
        Assert.Equal(0, await store.ReadAsync(s => Scalar(s, "SELECT count(*) FROM deprecations"), CancellationToken.None));
    }

    [Fact]
    public async Task Readers_see_committed_snapshots_while_writes_go_on()
    {
        using var store = MetadataStore.Open(_dir.Path, maxReaders: 3);
        var writes = Enumerable.Range(0, 200).Select(i => store.WriteAsync(i, static (s, i) =>
        {
            var command = s.Command("INSERT INTO deprecations VALUES ($id, 'm', 0, 1)", "$id");
            command.Parameters[0].Value = $"id{i}";
            return command.ExecuteNonQuery();
        }, CancellationToken.None));
        var reads = Enumerable.Range(0, 50).Select(_ => Task.Run(() => store.ReadAsync(s =>
        {
            // Two statements in one read transaction see the same snapshot.
            long first = Scalar(s, "SELECT count(*) FROM deprecations");
            Thread.Sleep(1);
            long second = Scalar(s, "SELECT count(*) FROM deprecations WHERE occurrences = 1");
            return (first, second);
        }, CancellationToken.None)));

        await Task.WhenAll(writes);
        foreach (var (first, second) in await Task.WhenAll(reads)) Assert.Equal(first, second);
        Assert.Equal(200, await store.ReadAsync(s => Scalar(s, "SELECT count(*) FROM deprecations"), CancellationToken.None));
    }

    [Fact]
    public void Operations_after_dispose_throw_ObjectDisposedException()
    {
        var store = MetadataStore.Open(_dir.Path);
        store.Dispose();
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.Read(s => 0));
        Assert.Throws<ObjectDisposedException>(() => store.Write(s => 0));
    }

    [Fact]
    public void Dispose_checkpoints_the_wal_into_the_database_file()
    {
        var store = MetadataStore.Open(_dir.Path);
        new SqliteDeprecationStore(store).Save(new DeprecationWarning("a", "m", DateTimeOffset.UnixEpoch, 1));
        store.Load();
        store.Dispose();
        Assert.False(File.Exists(store.Path + "-wal"));
    }

    [Fact]
    public void Acknowledged_writes_survive_without_a_clean_shutdown()
    {
        // Simulates kill -9: the store is never disposed, so nothing is checkpointed; copying the
        // files as they are on disk is what a restarted hulld would find.
        var store = MetadataStore.Open(_dir.Sub("live"));
        var deprecations = new SqliteDeprecationStore(store);
        var at = new DateTimeOffset(2025, 5, 6, 7, 8, 9, TimeSpan.Zero).AddTicks(1234567);
        for (int i = 1; i <= 5; i++) deprecations.Save(new DeprecationWarning("cri.x", "m", at, i));
        deprecations.Save(new DeprecationWarning("cri.y", "n", at, 1));

        var wal = store.Path + "-wal";
        Assert.True(new FileInfo(wal).Length > 0, "the writes are expected to be in the WAL, not yet checkpointed");

        var crashed = Directory.CreateDirectory(_dir.Sub("crashed")).FullName;
        File.Copy(store.Path, System.IO.Path.Combine(crashed, MetadataStore.FileName));
        File.Copy(wal, System.IO.Path.Combine(crashed, MetadataStore.FileName + "-wal"));
        using (var recovered = MetadataStore.Open(crashed))
        {
            Assert.Equal(
                [new DeprecationWarning("cri.x", "m", at, 5), new DeprecationWarning("cri.y", "n", at, 1)],
                new SqliteDeprecationStore(recovered).Load());
        }

        // Control: without the WAL the writes are missing, so the copy above really exercised WAL recovery.
        var withoutWal = Directory.CreateDirectory(_dir.Sub("without-wal")).FullName;
        File.Copy(store.Path, System.IO.Path.Combine(withoutWal, MetadataStore.FileName));
        using (var partial = MetadataStore.Open(withoutWal))
            Assert.Empty(new SqliteDeprecationStore(partial).Load());

        store.Dispose();
    }
}

internal static class MetadataStoreTestExtensions
{
    public static IReadOnlyList<DeprecationWarning> Load(this MetadataStore store) => new SqliteDeprecationStore(store).Load();
}
