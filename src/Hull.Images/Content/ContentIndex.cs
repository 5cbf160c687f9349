using Hull.Core.Metadata;
using Microsoft.Data.Sqlite;

namespace Hull.Images.Content;

/// <summary>The <c>content</c> table of meta.db (schema version 2).</summary>
internal sealed class ContentIndex(MetadataStore store)
{
    private const string Columns = "digest, size, media_type, labels, created, updated";
    private const string GetSql = $"SELECT {Columns} FROM content WHERE digest = $digest";
    private const string AllSql = $"SELECT {Columns} FROM content ORDER BY digest";
    private const string DeleteSql = "DELETE FROM content WHERE digest = $digest";
    private const string SetLabelsSql = "UPDATE content SET labels = $labels, updated = $updated WHERE digest = $digest";

    // A re-commit of an existing blob keeps its creation time and labels; a known media type wins over NULL.
    private const string UpsertSql = """
        INSERT INTO content (digest, size, media_type, labels, created, updated)
        VALUES ($digest, $size, $media_type, $labels, $now, $now)
        ON CONFLICT (digest) DO UPDATE SET
            size = excluded.size,
            media_type = coalesce(excluded.media_type, media_type),
            labels = CASE WHEN excluded.labels = '{}' THEN labels ELSE excluded.labels END,
            updated = excluded.updated
        """;

    public Task<ContentInfo?> GetAsync(string digest, CancellationToken cancellationToken) =>
        store.ReadAsync(digest, static (session, d) => Get(session, d), cancellationToken);

    public Task<IReadOnlyList<ContentInfo>> AllAsync(CancellationToken cancellationToken) =>
        store.ReadAsync(static session => All(session), cancellationToken);

    public Task<ContentInfo> UpsertAsync(string digest, long size, string? mediaType, IReadOnlyDictionary<string, string>? labels,
        DateTimeOffset now, CancellationToken cancellationToken) =>
        store.WriteAsync((digest, size, mediaType, labels, now), static (session, s) =>
        {
            Upsert(session, s.digest, s.size, s.mediaType, s.labels, s.now);
            return Get(session, s.digest)!;
        }, cancellationToken);

    public Task<ContentInfo?> SetLabelsAsync(string digest, IReadOnlyDictionary<string, string> labels, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        store.WriteAsync((digest, labels, now), static (session, s) =>
        {
            var command = session.Command(SetLabelsSql, "$labels", "$updated", "$digest");
            command.Parameters[0].Value = LabelsJson.Serialize(s.labels);
            command.Parameters[1].Value = MetadataTime.ToUnixNanoseconds(s.now);
            command.Parameters[2].Value = s.digest;
            return command.ExecuteNonQuery() == 0 ? null : Get(session, s.digest);
        }, cancellationToken);

    /// <summary>Deletes the row; false when there was none.</summary>
    public Task<bool> DeleteAsync(string digest, CancellationToken cancellationToken) =>
        store.WriteAsync(digest, static (session, d) => Delete(session, d), cancellationToken);

    /// <summary>Adds rows for blobs found on disk and drops rows whose blob is gone, in one transaction.</summary>
    public Task ReconcileAsync(IReadOnlyList<(string Digest, long Size, DateTimeOffset Modified)> added, IReadOnlyList<string> missing,
        CancellationToken cancellationToken) =>
        store.WriteAsync((added, missing), static (session, s) =>
        {
            foreach (var (digest, size, modified) in s.added) Upsert(session, digest, size, null, null, modified);
            foreach (var digest in s.missing) Delete(session, digest);
            return 0;
        }, cancellationToken);

    private static void Upsert(MetadataSession session, string digest, long size, string? mediaType,
        IReadOnlyDictionary<string, string>? labels, DateTimeOffset now)
    {
        var command = session.Command(UpsertSql, "$digest", "$size", "$media_type", "$labels", "$now");
        command.Parameters[0].Value = digest;
        command.Parameters[1].Value = size;
        command.Parameters[2].Value = (object?)mediaType ?? DBNull.Value;
        command.Parameters[3].Value = LabelsJson.Serialize(labels);
        command.Parameters[4].Value = MetadataTime.ToUnixNanoseconds(now);
        command.ExecuteNonQuery();
    }

    private static bool Delete(MetadataSession session, string digest)
    {
        var command = session.Command(DeleteSql, "$digest");
        command.Parameters[0].Value = digest;
        return command.ExecuteNonQuery() > 0;
    }

    private static ContentInfo? Get(MetadataSession session, string digest)
    {
        var command = session.Command(GetSql, "$digest");
        command.Parameters[0].Value = digest;
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRow(reader) : null;
    }

    private static IReadOnlyList<ContentInfo> All(MetadataSession session)
    {
        var list = new List<ContentInfo>();
        using var reader = session.Command(AllSql).ExecuteReader();
        while (reader.Read()) list.Add(ReadRow(reader));
        return list;
    }

    private static ContentInfo ReadRow(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetInt64(1),
        reader.IsDBNull(2) ? null : reader.GetString(2),
        LabelsJson.Deserialize(reader.GetString(3)),
        MetadataTime.FromUnixNanoseconds(reader.GetInt64(4)),
        MetadataTime.FromUnixNanoseconds(reader.GetInt64(5)));
}
