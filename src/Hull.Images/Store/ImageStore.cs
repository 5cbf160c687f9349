using System.Text.Json;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Images.Oci;
using Microsoft.Data.Sqlite;

namespace Hull.Images.Store;

/// <summary>
/// Image names in the metadata store; every change is one transaction. The whole list is also kept in memory, read
/// once after each change: the kubelet asks for an image's status before every container start and lists the images
/// periodically, and this store is the only writer of the table.
/// </summary>
public sealed class ImageStore(MetadataStore store)
{
    private const string Columns =
        "name, target_media_type, target_digest, target_size, manifest_digest, config_digest, chain_id, snapshotter, size, labels, created, updated";

    private readonly Lock _cacheGate = new();
    /// <summary>Kept only from a read that no write overlapped, and dropped when a write starts and when it ends.</summary>
    private ImageRecord[]? _all;
    private int _writing;
    private long _writes;

    public async Task<ImageRecord?> GetAsync(string name, CancellationToken cancellationToken) =>
        (await ListAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(r => r.Name == name);

    /// <summary>Every name, ordered by name.</summary>
    public async Task<IReadOnlyList<ImageRecord>> ListAsync(CancellationToken cancellationToken)
    {
        long writes;
        lock (_cacheGate)
        {
            if (_all is not null) return _all;
            writes = _writes;
        }
        var records = await store.ReadAsync(static session =>
        {
            var list = new List<ImageRecord>();
            using var reader = session.Command($"SELECT {Columns} FROM images ORDER BY name").ExecuteReader();
            while (reader.Read()) list.Add(ReadRecord(reader));
            return list.ToArray();
        }, cancellationToken).ConfigureAwait(false);
        lock (_cacheGate)
        {
            if (_writing == 0 && _writes == writes) _all = records;
        }
        return records;
    }

    /// <summary>
    /// Runs a write with no cached list in use from its start to its end, so a reader (a collection's roots) never gets
    /// a list from before a change that has committed.
    /// </summary>
    private async Task<T> WriteAsync<TState, T>(TState state, Func<MetadataSession, TState, T> work, CancellationToken cancellationToken)
    {
        lock (_cacheGate)
        {
            _writing++;
            _all = null;
        }
        try
        {
            return await store.WriteAsync(state, work, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_cacheGate)
            {
                _writing--;
                _writes++;
                _all = null;
            }
        }
    }

    public async Task<IReadOnlyList<ImageRecord>> ByIdAsync(string configDigest, CancellationToken cancellationToken) =>
        (await ListAsync(cancellationToken).ConfigureAwait(false)).Where(i => i.ConfigDigest == configDigest).ToArray();

    /// <summary>Creates or repoints names; all of them change together or none does.</summary>
    public Task PutAsync(IReadOnlyList<ImageRecord> records, CancellationToken cancellationToken) =>
        WriteAsync(records, static (session, rs) =>
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
        WriteAsync(names, static (session, ns) =>
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
