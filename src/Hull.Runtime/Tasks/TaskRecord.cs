using System.Text.Json;
using System.Text.Json.Serialization;
using Hull.Linux;

namespace Hull.Runtime.Tasks;

/// <summary>
/// task.json: everything hulld needs to find a container again after it restarts. Pids come with their start times
/// (/proc stat field 22) so a recycled pid is never mistaken for the container or its conmon.
/// </summary>
internal sealed record TaskRecord
{
    public required string Id { get; init; }
    public required string BundlePath { get; init; }
    public required string LogPath { get; init; }
    public required int Pid { get; init; }
    public ulong PidStartTime { get; init; }
    public required int ConmonPid { get; init; }
    public ulong ConmonStartTime { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    /// <summary>The container's cgroup directories by v1 controller, read from /proc/&lt;pid&gt;/cgroup at create.</summary>
    public Dictionary<string, string>? CgroupV1 { get; init; }
    public string? CgroupUnified { get; init; }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Written atomically and durably (<see cref="AtomicFile"/>): the file is either the old or the new one.</summary>
    public void Save(string path)
    {
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(this, Json));
    }

    /// <summary>Null when the file does not exist.</summary>
    public static TaskRecord? Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<TaskRecord>(stream, Json);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}
