using Hull.Core.Deprecations;

namespace Hull.Core.Metadata;

/// <summary>
/// Persists deprecation warnings in the <c>deprecations</c> table of meta.db so that they survive
/// restarts and can be reported as node conditions.
/// </summary>
public sealed class SqliteDeprecationStore(MetadataStore store) : IDeprecationStore
{
    // Save is called on request paths, possibly concurrently and out of order (the registry counts
    // under its lock but saves outside it). The upsert therefore keeps the maximum count and the
    // latest time instead of blindly overwriting, so a late save of an older state is harmless.
    private const string UpsertSql = """
        INSERT INTO deprecations (id, message, last_occurrence, occurrences)
        VALUES ($id, $message, $last_occurrence, $occurrences)
        ON CONFLICT (id) DO UPDATE SET
            message         = CASE WHEN excluded.occurrences >= occurrences THEN excluded.message ELSE message END,
            last_occurrence = max(last_occurrence, excluded.last_occurrence),
            occurrences     = max(occurrences, excluded.occurrences)
        """;

    private const string LoadSql = "SELECT id, message, last_occurrence, occurrences FROM deprecations ORDER BY id";

    public IReadOnlyList<DeprecationWarning> Load() => store.Read(static session =>
    {
        var warnings = new List<DeprecationWarning>();
        using var reader = session.Command(LoadSql).ExecuteReader();
        while (reader.Read())
        {
            warnings.Add(new DeprecationWarning(reader.GetString(0), reader.GetString(1),
                MetadataTime.FromUnixNanoseconds(reader.GetInt64(2)), reader.GetInt64(3)));
        }
        return warnings;
    });

    /// <summary>One prepared upsert in one short write transaction (one fsync).</summary>
    public void Save(DeprecationWarning warning) => store.Write(warning, static (session, w) =>
    {
        var command = session.Command(UpsertSql, "$id", "$message", "$last_occurrence", "$occurrences");
        command.Parameters[0].Value = w.Id;
        command.Parameters[1].Value = w.Message;
        command.Parameters[2].Value = MetadataTime.ToUnixNanoseconds(w.LastOccurrence);
        command.Parameters[3].Value = w.Occurrences;
        return command.ExecuteNonQuery();
    });
}
