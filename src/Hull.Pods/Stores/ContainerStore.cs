using System.Text.Json;
using System.Text.Json.Serialization;
using Hull.Core.Metadata;
using Hull.Pods.Index;
using Microsoft.Data.Sqlite;

namespace Hull.Pods.Stores;

/// <summary>Where a container is in its life. <see cref="Creating"/> is persisted only so a crash mid-create can be undone.</summary>
public enum ContainerState { Creating, Created, Running, Exited, Unknown }

/// <summary>The identity a container's first process runs as (CRI LinuxContainerUser).</summary>
public sealed record ContainerUserInfo(long Uid, long Gid, IReadOnlyList<long> SupplementalGroups);

/// <summary>A mount as ContainerStatus reports it; <paramref name="Image"/> is set for an image volume.</summary>
public sealed record ContainerMountInfo(string ContainerPath, string HostPath, bool Readonly, string Propagation, ImageVolumeInfo? Image = null);

/// <summary>
/// An image mounted as a volume: the image as the kubelet named it, its id (the config digest, reported as the mount's
/// image_ref, as PullImage returns it), the sub path, and the read-only view snapshot that holds it while the container exists.
/// </summary>
public sealed record ImageVolumeInfo(string Image, string ImageId, string SubPath, string SnapshotKey);

/// <summary>
/// One container as persisted and indexed: what the kubelet asked for (in domain terms), where its bundle, log and
/// snapshot are, and how its life went. Plain values only, so the JSON survives schema-free.
/// </summary>
public sealed record ContainerRecord : IIndexedRecord
{
    public required string Id { get; init; }
    public required string SandboxId { get; init; }
    public required string Name { get; init; }
    public uint Attempt { get; init; }
    /// <summary>The image as the kubelet named it (CRI ImageSpec.image).</summary>
    public required string Image { get; init; }
    /// <summary>The image id (config digest).</summary>
    public required string ImageId { get; init; }
    /// <summary>The image's digest reference when it has one, else its id (CRI image_ref).</summary>
    public string ImageRef { get; init; } = "";
    public Dictionary<string, string> Labels { get; init; } = [];
    public Dictionary<string, string> Annotations { get; init; } = [];
    public List<ContainerMountInfo> Mounts { get; init; } = [];
    /// <summary>The CRI log file (absolute).</summary>
    public string LogPath { get; init; } = "";
    /// <summary>The log path as the kubelet gave it (relative to the pod's log directory), reported back in status.</summary>
    public string RequestedLogPath { get; init; } = "";
    public required string BundlePath { get; init; }
    /// <summary>The snapshotter that holds the container's writable layer (snapshot key = container id).</summary>
    public string Snapshotter { get; init; } = "";
    public int StopSignal { get; init; } = 15;
    public bool Tty { get; init; }
    public bool Stdin { get; init; }
    public bool StdinOnce { get; init; }
    public ContainerState State { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public int ExitCode { get; init; }
    public string Reason { get; init; } = "";
    public string Message { get; init; } = "";
    public int Pid { get; init; }
    /// <summary>
    /// Created, and its task (conmon + runc) not made yet: StartContainer makes and starts it, as containerd makes its task
    /// there; so does an update of its resources. False for a record from before tasks were deferred.
    /// </summary>
    public bool TaskDeferred { get; init; }
    /// <summary>The uid, gid and supplemental groups the container's process was started with (from its OCI spec); null for records from before they were kept.</summary>
    public ContainerUserInfo? User { get; init; }
    /// <summary>The CPU/memory the container was created or last updated with (for status resources).</summary>
    public Hull.Runtime.Tasks.TaskResources? Resources { get; init; }
    /// <summary>Loaded from the store at start rather than made by this run (not persisted).</summary>
    [JsonIgnore]
    public bool Recovered { get; init; }
}

/// <summary>
/// The <c>containers</c> table of meta.db: one transaction per change. Lists are served from
/// <see cref="ContainerManager"/>'s in-memory index, not from here.
/// </summary>
public sealed class ContainerStore(MetadataStore store)
{
    internal static readonly JsonSerializerOptions Json = CreateJsonOptions();

    public Task PutAsync(ContainerRecord record, CancellationToken cancellationToken) =>
        store.WriteAsync(record, static (session, r) =>
        {
            var command = session.Command("""
                INSERT INTO containers (id, sandbox_id, name, attempt, state, created, record)
                VALUES ($id, $sandbox, $name, $attempt, $state, $created, $record)
                ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record
                """, "$id", "$sandbox", "$name", "$attempt", "$state", "$created", "$record");
            var p = command.Parameters;
            p[0].Value = r.Id;
            p[1].Value = r.SandboxId;
            p[2].Value = r.Name;
            p[3].Value = (long)r.Attempt;
            p[4].Value = StateName(r.State);
            p[5].Value = MetadataTime.ToUnixNanoseconds(r.CreatedAt);
            p[6].Value = JsonSerializer.Serialize(r, Json);
            command.ExecuteNonQuery();
            return true;
        }, cancellationToken);

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) =>
        store.WriteAsync(id, static (session, i) =>
        {
            var command = session.Command("DELETE FROM containers WHERE id = $id", "$id");
            command.Parameters[0].Value = i;
            return command.ExecuteNonQuery() > 0;
        }, cancellationToken);

    public Task<IReadOnlyList<ContainerRecord>> ListAsync(CancellationToken cancellationToken) =>
        store.ReadAsync<IReadOnlyList<ContainerRecord>>(static session =>
        {
            var records = new List<ContainerRecord>();
            using var reader = session.Command("SELECT id, record FROM containers ORDER BY created").ExecuteReader();
            while (reader.Read()) records.Add(Read(reader));
            return records;
        }, cancellationToken);

    /// <summary>
    /// Every container's snapshot keys, for the image garbage collector's roots: its writable snapshot (its id) and the
    /// views of the images it mounts as volumes (<see cref="ImageVolumeInfo.SnapshotKey"/>, read from the record's JSON).
    /// </summary>
    public Task<IReadOnlyCollection<string>> SnapshotKeysAsync(CancellationToken cancellationToken) =>
        store.ReadAsync<IReadOnlyCollection<string>>(static session =>
        {
            var keys = new List<string>();
            using var reader = session.Command("""
                SELECT id FROM containers
                UNION ALL
                SELECT json_extract(m.value, '$.image.snapshotKey') FROM containers c, json_each(c.record, '$.mounts') m
                WHERE json_extract(m.value, '$.image.snapshotKey') IS NOT NULL
                """).ExecuteReader();
            while (reader.Read()) keys.Add(reader.GetString(0));
            return keys;
        }, cancellationToken);

    /// <summary>A container that mounts the image <paramref name="imageId"/> as a volume, as <c>container "id" (name)</c>; null when none does.</summary>
    public Task<string?> ImageVolumeUserAsync(string imageId, CancellationToken cancellationToken) =>
        store.ReadAsync<string, string?>(imageId, static (session, image) =>
        {
            var command = session.Command("""
                SELECT c.id, c.name FROM containers c, json_each(c.record, '$.mounts') m
                WHERE json_extract(m.value, '$.image.imageId') = $image
                LIMIT 1
                """, "$image");
            command.Parameters[0].Value = image;
            using var reader = command.ExecuteReader();
            return reader.Read() ? $"container \"{reader.GetString(0)}\" ({reader.GetString(1)})" : null;
        }, cancellationToken);

    private static ContainerRecord Read(SqliteDataReader reader) =>
        JsonSerializer.Deserialize<ContainerRecord>(reader.GetString(1), Json)
        ?? throw new InvalidDataException($"container \"{reader.GetString(0)}\" has no record");

    public static string StateName(ContainerState state) => state switch
    {
        ContainerState.Created => "created",
        ContainerState.Running => "running",
        ContainerState.Exited => "exited",
        ContainerState.Unknown => "unknown",
        _ => "creating",
    };

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }
}
