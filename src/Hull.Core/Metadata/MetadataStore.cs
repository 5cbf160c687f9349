using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Core.Metadata;

/// <summary>
/// meta.db, the SQLite database under the root directory that holds Hull's durable metadata.
/// </summary>
/// <remarks>
/// <para>Concurrency: SQLite allows one writer and, in WAL mode, any number of readers that never
/// block it. The store mirrors that: one writer connection behind an async-capable gate (writes are
/// serialised in-process instead of spinning on SQLITE_BUSY against each other), and a small pool of
/// reader connections, so the kubelet's frequent lists run in parallel with writes. Connections are
/// long-lived, which keeps per-connection pragmas and prepared statements.</para>
/// <para>SQLite calls themselves are synchronous (Microsoft.Data.Sqlite's async methods are too); the
/// async methods wait asynchronously for a connection and honour cancellation until the work starts.
/// A started transaction runs to completion or rolls back on an exception.</para>
/// </remarks>
public sealed class MetadataStore : IDisposable
{
    public const string FileName = "meta.db";

    private static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(5);

    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;
    private readonly ILogger _logger;

    private readonly SemaphoreSlim _writerGate = new(1, 1);
    private MetadataSession? _writer; // guarded by _writerGate; null after a failure until reopened

    private readonly SemaphoreSlim _readerSlots;
    private readonly ConcurrentBag<MetadataSession> _idleReaders = new();

    private volatile bool _disposed;

    /// <summary>The full path of meta.db.</summary>
    public string Path { get; }

    /// <summary>The schema version of the open database (the newest this code knows).</summary>
    public int SchemaVersion { get; }

    private MetadataStore(string path, string connectionString, int busyTimeoutMs, int maxReaders, ILogger logger,
        MetadataSession writer, int schemaVersion)
    {
        Path = path;
        _connectionString = connectionString;
        _busyTimeoutMs = busyTimeoutMs;
        _readerSlots = new SemaphoreSlim(maxReaders, maxReaders);
        _logger = logger;
        _writer = writer;
        SchemaVersion = schemaVersion;
    }

    /// <summary>
    /// Opens <c>&lt;root&gt;/meta.db</c>, creating the directory and the database if needed, and
    /// brings the schema up to date. Throws <see cref="MetadataStoreException"/> naming the file and
    /// the reason when it cannot be opened, is not a Hull database, or was written by a newer Hull.
    /// </summary>
    public static MetadataStore Open(string root, ILogger? logger = null, TimeSpan? busyTimeout = null, int? maxReaders = null) =>
        Open(root, MetadataSchema.Migrations, logger, busyTimeout, maxReaders);

    internal static MetadataStore Open(string root, IReadOnlyList<Migration> migrations, ILogger? logger = null,
        TimeSpan? busyTimeout = null, int? maxReaders = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        MetadataSchema.Validate(migrations);
        logger ??= NullLogger.Instance;
        var path = System.IO.Path.Combine(System.IO.Path.GetFullPath(root), FileName);
        int busyMs = (int)Math.Clamp((busyTimeout ?? DefaultBusyTimeout).TotalMilliseconds, 0, int.MaxValue);
        // One reader per core is enough to saturate SQLite; at least 2 so a long read never starves lists.
        int readers = maxReaders ?? Math.Clamp(Environment.ProcessorCount, 2, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(readers, 1, nameof(maxReaders));

        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            // The store keeps its own long-lived connections; Microsoft.Data.Sqlite's pool would only
            // keep closed handles (and their file descriptors) alive behind our back.
            Pooling = false,
            DefaultTimeout = Math.Max(1, busyMs / 1000),
        }.ToString();

        MetadataSession? writer = null;
        try
        {
            PrepareFile(System.IO.Path.GetDirectoryName(path)!, path);
            writer = OpenSession(connectionString, busyMs, readOnly: false);
            int version = Migrate(writer, migrations, path, logger);
            return new MetadataStore(path, connectionString, busyMs, readers, logger, writer, version);
        }
        catch (SqliteException e)
        {
            writer?.Dispose();
            throw new MetadataStoreException(ErrorKind.Unavailable, path, Explain(e), e);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            writer?.Dispose();
            throw new MetadataStoreException(ErrorKind.Unavailable, path, e.Message, e);
        }
        catch
        {
            writer?.Dispose();
            throw;
        }
    }

    // ---- operations -------------------------------------------------------------------------

    /// <summary>Runs <paramref name="work"/> in a write transaction (BEGIN IMMEDIATE … COMMIT).</summary>
    public TResult Write<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _writerGate.Wait();
        try
        {
            return RunWrite(state, work);
        }
        finally
        {
            _writerGate.Release();
        }
    }

    public TResult Write<TResult>(Func<MetadataSession, TResult> work) =>
        Write(work, static (session, w) => w(session));

    public void Write(Action<MetadataSession> work) =>
        Write(work, static (session, w) => { w(session); return 0; });

    /// <summary>
    /// Waits for the writer without blocking a thread, then runs <paramref name="work"/> in a write
    /// transaction. Cancellation is honoured until the transaction starts.
    /// </summary>
    public async Task<TResult> WriteAsync<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work,
        CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _writerGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            return RunWrite(state, work);
        }
        finally
        {
            _writerGate.Release();
        }
    }

    public Task<TResult> WriteAsync<TResult>(Func<MetadataSession, TResult> work, CancellationToken cancellationToken) =>
        WriteAsync(work, static (session, w) => w(session), cancellationToken);

    public Task WriteAsync(Action<MetadataSession> work, CancellationToken cancellationToken) =>
        WriteAsync(work, static (session, w) => { w(session); return 0; }, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> on a reader connection in a read transaction: every statement
    /// sees the same committed snapshot, and the writer is never blocked. Writes are refused.
    /// </summary>
    public TResult Read<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _readerSlots.Wait();
        return RunRead(state, work);
    }

    public TResult Read<TResult>(Func<MetadataSession, TResult> work) =>
        Read(work, static (session, w) => w(session));

    public async Task<TResult> ReadAsync<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work,
        CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _readerSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (cancellationToken.IsCancellationRequested)
        {
            _readerSlots.Release();
            cancellationToken.ThrowIfCancellationRequested();
        }
        return RunRead(state, work);
    }

    public Task<TResult> ReadAsync<TResult>(Func<MetadataSession, TResult> work, CancellationToken cancellationToken) =>
        ReadAsync(work, static (session, w) => w(session), cancellationToken);

    // Called with the writer gate held.
    private TResult RunWrite<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var writer = _writer ??= OpenSession(_connectionString, _busyTimeoutMs, readOnly: false);
        try
        {
            return RunInTransaction(writer, deferred: false, state, work);
        }
        finally
        {
            // A writer whose rollback failed is dropped and a fresh one opened on the next write,
            // rather than leaving the store stuck with a connection in an unknown transaction state.
            if (writer.Broken)
            {
                _logger.LogWarning("metadata store {Path}: rollback failed, reopening the writer connection", Path);
                _writer = null;
                writer.Dispose();
            }
        }
    }

    // Called with a reader slot taken; releases it.
    private TResult RunRead<TState, TResult>(TState state, Func<MetadataSession, TState, TResult> work)
    {
        MetadataSession? reader = null;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_idleReaders.TryTake(out reader))
                reader = OpenSession(_connectionString, _busyTimeoutMs, readOnly: true);
            return RunInTransaction(reader, deferred: true, state, work);
        }
        finally
        {
            if (reader is not null)
            {
                if (!reader.Broken && !_disposed) _idleReaders.Add(reader);
                else reader.Dispose();
                // Dispose may have run while this read was in flight; leave nothing open behind it.
                if (_disposed) DrainReaders();
            }
            _readerSlots.Release();
        }
    }

    /// <summary>
    /// Runs work in a transaction: commits if it returns, rolls back and rethrows if it (or the
    /// commit) throws. If even the rollback fails, the session is marked broken so that the caller
    /// discards it; the original exception still propagates.
    /// </summary>
    private static TResult RunInTransaction<TState, TResult>(MetadataSession session, bool deferred, TState state,
        Func<MetadataSession, TState, TResult> work)
    {
        var transaction = session.BeginTransaction(deferred);
        try
        {
            var result = work(session, state);
            transaction.Commit();
            return result;
        }
        catch
        {
            try
            {
                transaction.Rollback();
            }
            catch (Exception)
            {
                session.Broken = true;
            }
            throw;
        }
        finally
        {
            session.Transaction = null;
            if (!session.Broken) transaction.Dispose(); // a broken one is disposed with its connection
        }
    }

    // ---- opening and migrating ------------------------------------------------------------------

    private static void PrepareFile(string root, string path)
    {
        if (Directory.Exists(path))
            throw new MetadataStoreException(ErrorKind.Unavailable, path, "it is a directory, not a database file");
        if (File.Exists(root))
            throw new MetadataStoreException(ErrorKind.Unavailable, path, $"its directory \"{root}\" is a file, not a directory");
        // 0711 like containerd's root: traversable for user-namespaced containers, not listable.
        if (!Directory.Exists(root))
            Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        if (!File.Exists(path))
        {
            // Create the (empty) file ourselves with mode 0600: the metadata holds container
            // environments, and SQLite gives the -wal and -shm files the database file's mode.
            try
            {
                using var _ = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first; fine.
            }
        }
        else
        {
            // SQLite reports any open failure as "unable to open database file"; probing with a plain
            // open gives the real reason (permission denied, read-only file system, …).
            using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
    }

    private static MetadataSession OpenSession(string connectionString, int busyTimeoutMs, bool readOnly)
    {
        var connection = new SqliteConnection(connectionString);
        var session = new MetadataSession(connection);
        try
        {
            connection.Open();
            // busy_timeout: wait (inside SQLite) for a lock held by another process — e.g. an
            //   operator's sqlite3 shell or a second hulld at start — instead of failing at once.
            // foreign_keys: off by default in SQLite; later tables (containers → sandboxes, …) rely on it.
            // synchronous=FULL: in WAL mode NORMAL can lose the last commits on power loss; FULL
            //   fsyncs the WAL at every commit, so an acknowledged write survives kill -9 and power
            //   loss. The cost is one fsync per write transaction.
            // query_only on readers: a write by mistake on a read path fails instead of racing the writer.
            session.ExecuteUncached(string.Create(CultureInfo.InvariantCulture,
                $"PRAGMA busy_timeout = {busyTimeoutMs}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA query_only = {(readOnly ? 1 : 0)};"));
            if (!readOnly)
            {
                // WAL: readers see a snapshot and never block the writer (nor it them); commits append
                // to the WAL instead of rewriting pages. The mode is stored in the file, so setting it
                // on the writer suffices. It fails (returns the old mode) on file systems without
                // shared memory support, e.g. some network file systems.
                var mode = session.ScalarUncached<string>("PRAGMA journal_mode = WAL;");
                if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                    throw new MetadataStoreException(ErrorKind.Unavailable, connection.DataSource,
                        $"cannot switch to WAL journal mode (SQLite kept \"{mode}\"); is the root on a local file system?");
                // Keep the WAL file from staying large after a burst (it is truncated to this after a checkpoint).
                session.ExecuteUncached("PRAGMA journal_size_limit = 67108864;");
            }
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static int Migrate(MetadataSession writer, IReadOnlyList<Migration> migrations, string path, ILogger logger)
    {
        int latest = migrations.Count == 0 ? 0 : migrations[^1].Version;
        int version = CheckIdentity(writer, path, latest);

        foreach (var migration in migrations)
        {
            if (migration.Version <= version) continue;
            var transaction = writer.BeginTransaction(deferred: false);
            try
            {
                // Re-read under the write lock: another process may have migrated meanwhile.
                version = writer.ScalarUncached<int>("PRAGMA user_version;");
                if (migration.Version <= version)
                {
                    transaction.Commit();
                    continue;
                }
                writer.ExecuteUncached(migration.Sql);
                // Pragmas cannot take parameters; both values are integers we format ourselves.
                writer.ExecuteUncached(string.Create(CultureInfo.InvariantCulture,
                    $"PRAGMA application_id = {MetadataSchema.ApplicationId}; PRAGMA user_version = {migration.Version};"));
                transaction.Commit();
                version = migration.Version;
                logger.LogInformation("metadata store {Path}: applied schema migration {Version} ({Name})", path, migration.Version, migration.Name);
            }
            catch (Exception e) when (e is not MetadataStoreException)
            {
                try { transaction.Rollback(); } catch (Exception) { writer.Broken = true; } // the store is not opened anyway
                throw new MetadataStoreException(ErrorKind.Unavailable, path,
                    $"schema migration {migration.Version} ({migration.Name}) failed: {(e is SqliteException s ? Explain(s) : e.Message)}", e);
            }
            finally
            {
                writer.Transaction = null;
                if (!writer.Broken) transaction.Dispose();
            }
        }
        return version;
    }

    /// <summary>Refuses files that are not Hull metadata or are newer than this code; returns the version.</summary>
    private static int CheckIdentity(MetadataSession writer, string path, int latest)
    {
        int version = writer.ScalarUncached<int>("PRAGMA user_version;");
        int applicationId = writer.ScalarUncached<int>("PRAGMA application_id;");
        if (applicationId != 0 && applicationId != MetadataSchema.ApplicationId)
            throw new MetadataStoreException(ErrorKind.FailedPrecondition, path,
                $"it is a SQLite database of another application (application_id 0x{applicationId:x8}), not Hull metadata");
        if (applicationId == 0 && (version != 0 || writer.ScalarUncached<long>("SELECT count(*) FROM sqlite_schema;") != 0))
            throw new MetadataStoreException(ErrorKind.FailedPrecondition, path,
                "it is a SQLite database that Hull did not create (no Hull application_id), refusing to modify it");
        if (version > latest)
            throw new MetadataStoreException(ErrorKind.FailedPrecondition, path,
                $"schema version {version} is newer than version {latest}, the newest this Hull {HullInfo.Version} knows; " +
                "it was written by a newer Hull: run that version again or restore a backup of meta.db");
        return version;
    }

    private static string Explain(SqliteException e)
    {
        string detail = $"SQLite error {e.SqliteErrorCode}/{e.SqliteExtendedErrorCode}: {e.Message}";
        return e.SqliteErrorCode switch
        {
            SQLitePCL.raw.SQLITE_NOTADB => $"the file is not a SQLite database (corrupt or overwritten) ({detail})",
            SQLitePCL.raw.SQLITE_CORRUPT => $"the database is corrupt; restore a backup or move it aside to start empty ({detail})",
            SQLitePCL.raw.SQLITE_CANTOPEN => $"cannot open the file or create its -wal/-shm files next to it ({detail})",
            SQLitePCL.raw.SQLITE_READONLY => $"the database is read-only ({detail})",
            SQLitePCL.raw.SQLITE_PERM => $"permission denied ({detail})",
            SQLitePCL.raw.SQLITE_FULL => $"the disk is full ({detail})",
            SQLitePCL.raw.SQLITE_IOERR => $"I/O error ({detail})",
            SQLitePCL.raw.SQLITE_BUSY or SQLitePCL.raw.SQLITE_LOCKED => $"the database stayed locked by another process ({detail})",
            _ => detail,
        };
    }

    // ---- disposal -----------------------------------------------------------------------------

    /// <summary>
    /// Waits for the write in progress, then closes every connection (the last close checkpoints the
    /// WAL into meta.db). Reads in flight finish and close their connection when done.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _writerGate.Wait();
        try
        {
            _writer?.Dispose();
            _writer = null;
        }
        finally
        {
            _writerGate.Release();
        }
        DrainReaders();
    }

    private void DrainReaders()
    {
        while (_idleReaders.TryTake(out var reader)) reader.Dispose();
    }
}
