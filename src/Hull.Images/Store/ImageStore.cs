using System.Text.Json;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Images.Oci;
using Microsoft.Data.Sqlite;

namespace Hull.Images.Store;

/// <summary>Image names in the metadata store; every change is one transaction.</summary>
public sealed class ImageStore(MetadataStore store)
{
    private const string Columns =
        "name, target_media_type, target_digest, target_size, manifest_digest, config_digest, chain_id, snapshotter, size, labels, created, updated";

    public Task<ImageRecord?> GetAsync(string name, CancellationToken cancellationToken) =>
        store.ReadAsync(name, static (session, n) =>
        {
            var command = session.Command($"SELECT {Columns} FROM images WHERE name = $name", "$name");
            command.Parameters[0].Value = n;
            using var reader = command.ExecuteReader();
            return reader.Read() ? ReadRecord(reader) : null;
        }, cancellationToken);

    public Task<IReadOnlyList<ImageRecord>> ListAsync(CancellationToken cancellationToken) =>
        store.ReadAsync<IReadOnlyList<ImageRecord>>(static session =>
        {
            var records = new List<ImageRecord>();
            using var reader = session.Command($"SELECT {Columns} FROM images ORDER BY name").ExecuteReader();
            while (reader.Read()) records.Add(ReadRecord(reader));
            return records;
        }, cancellationToken);

    public async Task<IReadOnlyList<ImageRecord>> ByIdAsync(string configDigest, CancellationToken cancellationToken) =>
        (await ListAsync(cancellationToken).ConfigureAwait(false)).Where(i => i.ConfigDigest == configDigest).ToArray();

    /// <summary>Creates or repoints names; all of them change together or none does.</summary>
    public Task PutAsync(IReadOnlyList<ImageRecord> records, CancellationToken cancellationToken) =>
        store.WriteAsync(records, static (session, rs) =>
        {
            var command = session.Command($"""
                INSERT INTO images ({Columns})
                VALUES ($name, $tmt, $td, $ts, $md, $cd, $chain, $snap, $size, $labels, $created, $updated)
                ON CONFLICT (name) DO UPDATE SET
                    target_media_type = excluded.target_media_type, target_digest = excluded.target_digest,
                    target_size = excluded.target_size, manifest_digest = excluded.manifest_digest,
                    config_digest = excluded.config_digest, chain_id = excluded.chain_id,
                    snapshotter = excluded.snapshotter, size = excluded.size, labels = excluded.labels,
                    updated = excluded.updated
                """, "$name", "$tmt", "$td", "$ts", "$md", "$cd", "$chain", "$snap", "$size", "$labels", "$created", "$updated");
            foreach (var r in rs)
            {
                command.Parameters[0].Value = r.Name;
                command.Parameters[1].Value = r.Target.MediaType;
                command.Parameters[2].Value = r.Target.Digest;
                command.Parameters[3].Value = r.Target.Size;
                command.Parameters[4].Value = r.ManifestDigest;
                command.Parameters[5].Value = r.ConfigDigest;
                command.Parameters[6].Value = r.ChainId;
                command.Parameters[7].Value = r.Snapshotter;
                command.Parameters[8].Value = r.Size;
                command.Parameters[9].Value = JsonSerializer.Serialize(r.Labels);
                command.Parameters[10].Value = MetadataTime.ToUnixNanoseconds(r.Created);
                command.Parameters[11].Value = MetadataTime.ToUnixNanoseconds(r.Updated);
                command.ExecuteNonQuery();
            }
            return rs.Count;
        }, cancellationToken);

    /// <summary>Deletes names; returns how many existed.</summary>
    public Task<int> DeleteAsync(IReadOnlyList<string> names, CancellationToken cancellationToken) =>
        store.WriteAsync(names, static (session, ns) =>
        {
            var command = session.Command("DELETE FROM images WHERE name = $name", "$name");
            int deleted = 0;
            foreach (var n in ns)
            {
                command.Parameters[0].Value = n;
                deleted += command.ExecuteNonQuery();
            }
            return deleted;
        }, cancellationToken);

    private static ImageRecord ReadRecord(SqliteDataReader r) => new(
        r.GetString(0),
        new Descriptor(r.GetString(1), r.GetString(2), r.GetInt64(3)),
        r.GetString(4),
        r.GetString(5),
        r.GetString(6),
        r.GetString(7),
        r.GetInt64(8),
        JsonSerializer.Deserialize<Dictionary<string, string>>(r.GetString(9)) ??
            throw new HullException(ErrorKind.Internal, $"image \"{r.GetString(0)}\" has malformed labels in the metadata store"),
        MetadataTime.FromUnixNanoseconds(r.GetInt64(10)),
        MetadataTime.FromUnixNanoseconds(r.GetInt64(11)));
}
