using System.Text.Json;
using Hull.Core.Metadata;
using Hull.Pods.Index;
using Hull.Sandbox.Controller;
using Hull.Sandbox.PodSandbox;
using Microsoft.Data.Sqlite;

namespace Hull.Pods.Stores;

/// <summary>One pod sandbox as persisted: what was asked for, what the sandboxer made, and where it is in its life.</summary>
public sealed record SandboxRecord(PodSandboxSpec Spec, SandboxInstance Instance, SandboxState State, DateTimeOffset CreatedAt,
    DateTimeOffset? ExitedAt) : IIndexedRecord
{
    public string Id => Spec.Id;

    /// <summary>Loaded from the store at start rather than made by this run (not persisted): a 'creating' row is then a crash's leftover.</summary>
    public bool Recovered { get; init; }
}

/// <summary>
/// The <c>sandboxes</c> table of meta.db. Every change is one transaction, so what RunPodSandbox acknowledged
/// survives a kill -9. Listing is not served from here but from <see cref="PodManager"/>'s in-memory index.
/// </summary>
public sealed class SandboxStore(MetadataStore store)
{
    private const string Columns =
        "id, name, namespace, uid, attempt, runtime_handler, state, created, exited, netns_path, ips, spec, instance, labels, annotations";

    private static JsonSerializerOptions Json => SandboxJson.Options;

    public Task PutAsync(SandboxRecord record, CancellationToken cancellationToken) =>
        store.WriteAsync(record, static (session, r) =>
        {
            var command = session.Command($"""
                INSERT INTO sandboxes ({Columns})
                VALUES ($id, $name, $ns, $uid, $attempt, $handler, $state, $created, $exited, $netns, $ips, $spec, $instance, $labels, $annotations)
                ON CONFLICT (id) DO UPDATE SET
                    state = excluded.state, exited = excluded.exited, netns_path = excluded.netns_path, ips = excluded.ips,
                    spec = excluded.spec, instance = excluded.instance, labels = excluded.labels, annotations = excluded.annotations
                """, "$id", "$name", "$ns", "$uid", "$attempt", "$handler", "$state", "$created", "$exited", "$netns", "$ips", "$spec",
                "$instance", "$labels", "$annotations");
            var p = command.Parameters;
            p[0].Value = r.Id;
            p[1].Value = r.Spec.Identity.Name;
            p[2].Value = r.Spec.Identity.Namespace;
            p[3].Value = r.Spec.Identity.Uid;
            p[4].Value = (long)r.Spec.Identity.Attempt;
            p[5].Value = r.Spec.RuntimeHandler;
            p[6].Value = StateName(r.State);
            p[7].Value = MetadataTime.ToUnixNanoseconds(r.CreatedAt);
            p[8].Value = r.ExitedAt is { } exited ? MetadataTime.ToUnixNanoseconds(exited) : DBNull.Value;
            p[9].Value = r.Instance.NetNsPath;
            p[10].Value = JsonSerializer.Serialize(r.Instance.Ips.Select(i => i.ToString()).ToArray(), Json);
            p[11].Value = JsonSerializer.Serialize(r.Spec, Json);
            p[12].Value = JsonSerializer.Serialize(r.Instance, Json);
            p[13].Value = JsonSerializer.Serialize(r.Spec.Labels, Json);
            p[14].Value = JsonSerializer.Serialize(r.Spec.Annotations, Json);
            command.ExecuteNonQuery();
            return true;
        }, cancellationToken);

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        store.WriteAsync(id, static (session, i) =>
        {
            var command = session.Command("DELETE FROM sandboxes WHERE id = $id", "$id");
            command.Parameters[0].Value = i;
            return command.ExecuteNonQuery() > 0;
        }, cancellationToken);

    public Task<IReadOnlyList<SandboxRecord>> ListAsync(CancellationToken cancellationToken) =>
        store.ReadAsync<IReadOnlyList<SandboxRecord>>(static session =>
        {
            var records = new List<SandboxRecord>();
            using var reader = session.Command($"SELECT {Columns} FROM sandboxes ORDER BY created").ExecuteReader();
            while (reader.Read()) records.Add(Read(reader));
            return records;
        }, cancellationToken);

    /// <summary>
    /// Snapshot keys every persisted pod may hold (its pause-image rootfs, <see cref="InfraSnapshots.Key"/>), for
    /// the garbage collector's roots. Every pod counts, whatever its state: the row is written before the snapshot is made.
    /// </summary>
    public Task<IReadOnlyCollection<string>> InfraSnapshotKeysAsync(CancellationToken cancellationToken) =>
        store.ReadAsync<IReadOnlyCollection<string>>(static session =>
        {
            var keys = new List<string>();
            using var reader = session.Command("SELECT id FROM sandboxes").ExecuteReader();
            while (reader.Read()) keys.Add(InfraSnapshots.Key(reader.GetString(0)));
            return keys;
        }, cancellationToken);

    private static SandboxRecord Read(SqliteDataReader reader)
    {
        var spec = JsonSerializer.Deserialize<PodSandboxSpec>(reader.GetString(11), Json)
                   ?? throw new InvalidDataException($"sandbox \"{reader.GetString(0)}\" has no spec");
        var instance = JsonSerializer.Deserialize<SandboxInstance>(reader.GetString(12), Json)
                       ?? throw new InvalidDataException($"sandbox \"{reader.GetString(0)}\" has no instance");
        return new SandboxRecord(spec, instance, ParseState(reader.GetString(6)),
            MetadataTime.FromUnixNanoseconds(reader.GetInt64(7)),
            reader.IsDBNull(8) ? null : MetadataTime.FromUnixNanoseconds(reader.GetInt64(8)));
    }

    internal static string StateName(SandboxState state) => state switch
    {
        SandboxState.Ready => "ready",
        SandboxState.NotReady => "notready",
        _ => "creating",
    };

    private static SandboxState ParseState(string state) => state switch
    {
        "ready" => SandboxState.Ready,
        "notready" => SandboxState.NotReady,
        _ => SandboxState.Creating,
    };
}
