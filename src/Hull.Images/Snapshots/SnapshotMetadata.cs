using Hull.Core;
using Hull.Core.Metadata;
using Hull.Images.Content;
using Microsoft.Data.Sqlite;

namespace Hull.Images.Snapshots;

internal sealed record SnapshotRecord(long Id, string Key, SnapshotKind Kind, long? ParentId, string? ParentKey,
    IReadOnlyDictionary<string, string> Labels, DateTimeOffset Created, DateTimeOffset Updated)
{
    public SnapshotInfo ToInfo() => new(Key, ParentKey, Kind, Labels, Created, Updated);
}

/// <summary>The rows of one snapshotter in the <c>snapshots</c> table (schema version 3). Every method runs inside the caller's transaction.</summary>
internal sealed class SnapshotMetadata(string snapshotter)
{
    private const string Select = """
        SELECT s.id, s.key, s.kind, s.parent_id, p.key, s.labels, s.created, s.updated
        FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id
        """;
    private const string ByKeySql = Select + " WHERE s.snapshotter = $snapshotter AND s.key = $key";
    private const string ByIdSql = Select + " WHERE s.snapshotter = $snapshotter AND s.id = $id";
    private const string AllSql = Select + " WHERE s.snapshotter = $snapshotter ORDER BY s.key";
    private const string IdsSql = "SELECT id FROM snapshots WHERE snapshotter = $snapshotter";
    private const string ChildrenSql = "SELECT key FROM snapshots WHERE parent_id = $id ORDER BY key";
    private const string DeleteSql = "DELETE FROM snapshots WHERE id = $id";
    private const string InsertSql = """
        INSERT INTO snapshots (snapshotter, key, kind, parent_id, labels, created, updated)
        VALUES ($snapshotter, $key, $kind, $parent_id, $labels, $now, $now) RETURNING id
        """;
    private const string CommitSql = "UPDATE snapshots SET key = $name, kind = 'committed', labels = $labels, updated = $now WHERE id = $id";
    // Parents first-to-last from the snapshot up: [self, parent, grandparent, …].
    private const string ChainSql = """
        WITH RECURSIVE chain (id, parent_id, depth) AS (
            SELECT id, parent_id, 0 FROM snapshots WHERE id = $id
            UNION ALL
            SELECT s.id, s.parent_id, c.depth + 1 FROM snapshots s JOIN chain c ON s.id = c.parent_id
        )
        SELECT id FROM chain ORDER BY depth
        """;

    public string Snapshotter => snapshotter;

    public SnapshotRecord? Get(MetadataSession session, string key)
    {
        var command = session.Command(ByKeySql, "$snapshotter", "$key");
        command.Parameters[0].Value = snapshotter;
        command.Parameters[1].Value = key;
        return ReadOne(command);
    }

    public SnapshotRecord? Get(MetadataSession session, long id)
    {
        var command = session.Command(ByIdSql, "$snapshotter", "$id");
        command.Parameters[0].Value = snapshotter;
        command.Parameters[1].Value = id;
        return ReadOne(command);
    }

    public SnapshotRecord Require(MetadataSession session, string key) =>
        Get(session, key) ?? throw new HullException(ErrorKind.NotFound, $"snapshot \"{key}\" not found in the {snapshotter} snapshotter");

    public IReadOnlyList<SnapshotRecord> All(MetadataSession session)
    {
        var command = session.Command(AllSql, "$snapshotter");
        command.Parameters[0].Value = snapshotter;
        var list = new List<SnapshotRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) list.Add(ReadRow(reader));
        return list;
    }

    public HashSet<long> Ids(MetadataSession session)
    {
        var command = session.Command(IdsSql, "$snapshotter");
        command.Parameters[0].Value = snapshotter;
        var ids = new HashSet<long>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) ids.Add(reader.GetInt64(0));
        return ids;
    }

    /// <summary>The ids of the parents, nearest first (what an overlay's lowerdir lists).</summary>
    public IReadOnlyList<long> ParentIds(MetadataSession session, long id)
    {
        var command = session.Command(ChainSql, "$id");
        command.Parameters[0].Value = id;
        var ids = new List<long>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) ids.Add(reader.GetInt64(0));
        return ids.Count == 0 ? [] : ids[1..];
    }

    public IReadOnlyList<string> Children(MetadataSession session, long id)
    {
        var command = session.Command(ChildrenSql, "$id");
        command.Parameters[0].Value = id;
        var keys = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) keys.Add(reader.GetString(0));
        return keys;
    }

    public long Insert(MetadataSession session, string key, SnapshotKind kind, long? parentId, IReadOnlyDictionary<string, string>? labels, DateTimeOffset now)
    {
        var command = session.Command(InsertSql, "$snapshotter", "$key", "$kind", "$parent_id", "$labels", "$now");
        command.Parameters[0].Value = snapshotter;
        command.Parameters[1].Value = key;
        command.Parameters[2].Value = KindText(kind);
        command.Parameters[3].Value = (object?)parentId ?? DBNull.Value;
        command.Parameters[4].Value = LabelsJson.Serialize(labels);
        command.Parameters[5].Value = MetadataTime.ToUnixNanoseconds(now);
        return (long)command.ExecuteScalar()!;
    }

    public void Commit(MetadataSession session, long id, string name, IReadOnlyDictionary<string, string> labels, DateTimeOffset now)
    {
        var command = session.Command(CommitSql, "$name", "$labels", "$now", "$id");
        command.Parameters[0].Value = name;
        command.Parameters[1].Value = LabelsJson.Serialize(labels);
        command.Parameters[2].Value = MetadataTime.ToUnixNanoseconds(now);
        command.Parameters[3].Value = id;
        command.ExecuteNonQuery();
    }

    public void Delete(MetadataSession session, long id)
    {
        var command = session.Command(DeleteSql, "$id");
        command.Parameters[0].Value = id;
        command.ExecuteNonQuery();
    }

    private static SnapshotRecord? ReadOne(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRow(reader) : null;
    }

    private static SnapshotRecord ReadRow(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetString(1),
        reader.GetString(2) switch
        {
            "active" => SnapshotKind.Active,
            "committed" => SnapshotKind.Committed,
            _ => SnapshotKind.View,
        },
        reader.IsDBNull(3) ? null : reader.GetInt64(3),
        reader.IsDBNull(4) ? null : reader.GetString(4),
        LabelsJson.Deserialize(reader.GetString(5)),
        MetadataTime.FromUnixNanoseconds(reader.GetInt64(6)),
        MetadataTime.FromUnixNanoseconds(reader.GetInt64(7)));

    private static string KindText(SnapshotKind kind) => kind switch
    {
        SnapshotKind.Active => "active",
        SnapshotKind.Committed => "committed",
        _ => "view",
    };
}
