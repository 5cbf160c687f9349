using Microsoft.Data.Sqlite;

namespace Hull.Core.Metadata;

/// <summary>
/// One connection of the <see cref="MetadataStore"/>, lent to a single operation at a time. It keeps
/// the prepared statements of that connection, so the SQL of a hot path is compiled once per
/// connection rather than once per call.
/// </summary>
public sealed class MetadataSession : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);
    private readonly SqliteConnection _connection;

    internal MetadataSession(SqliteConnection connection) => _connection = connection;

    /// <summary>Set when a rollback failed: the connection's state is unknown and it is discarded.</summary>
    internal bool Broken { get; set; }

    /// <summary>The transaction the current operation runs in (set by the store).</summary>
    internal SqliteTransaction? Transaction { get; set; }

    /// <summary>
    /// Returns this connection's prepared command for <paramref name="sql"/>, compiling it the first
    /// time. <paramref name="sql"/> must be a constant (it is the cache key); parameters are declared
    /// once, in order, and their values are set by index before each execution:
    /// <code>
    /// var cmd = session.Command(Sql, "$id", "$name");
    /// cmd.Parameters[0].Value = id; cmd.Parameters[1].Value = name;
    /// cmd.ExecuteNonQuery();
    /// </code>
    /// Dispose any reader before the command is used again.
    /// </summary>
    public SqliteCommand Command(string sql, params ReadOnlySpan<string> parameterNames)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = _connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in parameterNames) command.Parameters.Add(new SqliteParameter(name, DBNull.Value));
            command.Transaction = Transaction;
            command.Prepare();
            _commands.Add(sql, command);
        }
        else if (command.Parameters.Count != parameterNames.Length)
        {
            throw new InvalidOperationException($"the SQL \"{sql}\" was prepared with {command.Parameters.Count} parameters, not {parameterNames.Length}");
        }
        command.Transaction = Transaction;
        return command;
    }

    /// <summary>Runs SQL that is not worth caching (schema changes, one-off pragmas).</summary>
    internal void ExecuteUncached(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = Transaction;
        command.ExecuteNonQuery();
    }

    internal T? ScalarUncached<T>(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = Transaction;
        var value = command.ExecuteScalar();
        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    internal SqliteTransaction BeginTransaction(bool deferred)
    {
        // Writers use BEGIN IMMEDIATE: the write lock is taken up front, so a transaction never fails
        // half-way with SQLITE_BUSY when upgrading from read to write. Readers use a deferred
        // transaction, which in WAL mode is just a consistent snapshot and never blocks the writer.
        Transaction = _connection.BeginTransaction(deferred);
        return Transaction;
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values) command.Dispose();
        _commands.Clear();
        Transaction = null;
        try
        {
            // Closing the connection rolls back whatever is still open in it.
            _connection.Dispose();
        }
        catch (SqliteException) when (Broken)
        {
            // Its rollback already failed once; the native handle is released by its finalizer.
        }
    }
}
