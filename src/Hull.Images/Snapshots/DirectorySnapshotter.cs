using System.Globalization;
using Hull.Core;
using Hull.Core.Metadata;
using Hull.Linux;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Snapshots;

/// <summary>
/// What the overlayfs and native snapshotters share: metadata in meta.db, one directory per snapshot
/// at <c>root/snapshots/&lt;name&gt;/&lt;id&gt;</c> (the file system in <c>fs</c>), and the crash-safe order
/// of creating and removing them. A snapshot is built in a <c>new-*</c> directory and renamed to its
/// id inside the transaction that records it; removal renames it to <c>removing-&lt;id&gt;</c> inside the
/// transaction that deletes the row and deletes it afterwards. <see cref="CleanupAsync"/> settles what
/// a crash left in between, so no directory outlives its metadata.
/// </summary>
public abstract class DirectorySnapshotter : ISnapshotter
{
    private const string NewPrefix = "new-";
    private const string RemovingPrefix = "removing-";

    private readonly MetadataStore _store;
    private readonly SnapshotMetadata _metadata;
    private readonly TimeProvider _time;
    private protected readonly ILogger Logger;

    public string Name { get; }

    /// <summary><c>root/snapshots/&lt;name&gt;</c>.</summary>
    public string Root { get; }

    private protected DirectorySnapshotter(string name, string hullRoot, MetadataStore store, ILogger? logger, TimeProvider? time)
    {
        Name = name;
        Root = Path.Combine(Path.GetFullPath(hullRoot), "snapshots", name);
        _store = store;
        _metadata = new SnapshotMetadata(name);
        _time = time ?? TimeProvider.System;
        Logger = logger ?? NullLogger.Instance;
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private protected string SnapshotDirectory(long id) => Path.Combine(Root, id.ToString(CultureInfo.InvariantCulture));
    private protected string FsDirectory(long id) => Path.Combine(SnapshotDirectory(id), "fs");
    private protected string WorkDirectory(long id) => Path.Combine(SnapshotDirectory(id), "work");
    private string RemovingDirectory(long id) => Path.Combine(Root, RemovingPrefix + id.ToString(CultureInfo.InvariantCulture));

    /// <summary>Fills the new snapshot's directory (<see cref="PopulateRequest.Directory"/>/fs, …) before it is recorded; returns the labels to record.</summary>
    private protected abstract IReadOnlyDictionary<string, string>? Populate(PopulateRequest request, CancellationToken cancellationToken);

    /// <summary>A new snapshot: where it is built, what it is, its parent (and the parent's chain, nearest first) and its labels.</summary>
    private protected sealed record PopulateRequest(string Directory, SnapshotKind Kind, SnapshotRecord? Parent, IReadOnlyList<long> ParentChain,
        IReadOnlyDictionary<string, string>? Labels);

    /// <summary>The mounts of an active or view snapshot, given its parents nearest first.</summary>
    private protected abstract IReadOnlyList<Mount> MountsOf(SnapshotRecord snapshot, IReadOnlyList<long> parentIds);

    // ---- queries ---------------------------------------------------------------------------------

    public async Task<SnapshotInfo> StatAsync(string key, CancellationToken cancellationToken) =>
        (await _store.ReadAsync(key, (s, k) => _metadata.Require(s, k), cancellationToken).ConfigureAwait(false)).ToInfo();

    public async Task<SnapshotInfo?> TryStatAsync(string key, CancellationToken cancellationToken) =>
        (await _store.ReadAsync(key, (s, k) => _metadata.Get(s, k), cancellationToken).ConfigureAwait(false))?.ToInfo();

    public async Task<IReadOnlyList<SnapshotInfo>> WalkAsync(CancellationToken cancellationToken) =>
        (await _store.ReadAsync(s => _metadata.All(s), cancellationToken).ConfigureAwait(false)).Select(r => r.ToInfo()).ToList();

    public async Task<SnapshotUsage> UsageAsync(string key, CancellationToken cancellationToken)
    {
        var record = await _store.ReadAsync(key, (s, k) => _metadata.Require(s, k), cancellationToken).ConfigureAwait(false);
        return await Task.Run(() => SnapshotUsage.Measure(FsDirectory(record.Id), cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<Mount>> MountsAsync(string key, CancellationToken cancellationToken)
    {
        var (record, parents) = await _store.ReadAsync(key, (s, k) =>
        {
            var r = _metadata.Require(s, k);
            return (r, _metadata.ParentIds(s, r.Id));
        }, cancellationToken).ConfigureAwait(false);
        if (record.Kind == SnapshotKind.Committed)
            throw new HullException(ErrorKind.FailedPrecondition, $"snapshot \"{key}\" is committed; only active snapshots and views have mounts");
        return MountsOf(record, parents);
    }

    // ---- changes ---------------------------------------------------------------------------------

    public Task<IReadOnlyList<Mount>> PrepareAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default) => CreateAsync(SnapshotKind.Active, key, parent, labels, cancellationToken);

    public Task<IReadOnlyList<Mount>> ViewAsync(string key, string? parent, IReadOnlyDictionary<string, string>? labels = null,
        CancellationToken cancellationToken = default) => CreateAsync(SnapshotKind.View, key, parent, labels, cancellationToken);

    private async Task<IReadOnlyList<Mount>> CreateAsync(SnapshotKind kind, string key, string? parent,
        IReadOnlyDictionary<string, string>? labels, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var (parentRecord, chain) = await _store.ReadAsync((key, parent), (s, a) =>
        {
            if (_metadata.Get(s, a.key) is not null) throw Exists(a.key);
            if (a.parent is null) return ((SnapshotRecord?)null, (IReadOnlyList<long>)[]);
            var p = _metadata.Get(s, a.parent) ?? throw new HullException(ErrorKind.NotFound,
                $"parent snapshot \"{a.parent}\" of \"{a.key}\" not found in the {Name} snapshotter");
            if (p.Kind != SnapshotKind.Committed)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"parent snapshot \"{a.parent}\" of \"{a.key}\" is {p.Kind.ToString().ToLowerInvariant()}, not committed");
            return (p, (IReadOnlyList<long>)[p.Id, .. _metadata.ParentIds(s, p.Id)]);
        }, cancellationToken).ConfigureAwait(false);

        string temp = Path.Combine(Root, NewPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            // A native copy can take a while: off the caller's thread, and outside the metadata write lock.
            labels = await Task.Run(() => Populate(new PopulateRequest(temp, kind, parentRecord, chain, labels), cancellationToken), cancellationToken)
                .ConfigureAwait(false);
            var (record, parentIds) = await _store.WriteAsync((key, kind, parentRecord, labels, temp), (s, a) =>
            {
                if (_metadata.Get(s, a.key) is not null) throw Exists(a.key);
                if (a.parentRecord is not null && _metadata.Get(s, a.parentRecord.Id) is null)
                    throw new HullException(ErrorKind.NotFound, $"parent snapshot \"{a.parentRecord.Key}\" of \"{a.key}\" was removed meanwhile");
                long id = _metadata.Insert(s, a.key, a.kind, a.parentRecord?.Id, a.labels, _time.GetUtcNow());
                string target = SnapshotDirectory(id);
                // An id rolled back by a failed commit can come again; whatever sits under it has no metadata.
                if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
                Directory.Move(a.temp, target); // last: a failure rolls the row back and leaves no directory for it
                return (_metadata.Get(s, id)!, _metadata.ParentIds(s, id));
            }, cancellationToken).ConfigureAwait(false);
            FileSync.SyncDirectory(Root);
            return MountsOf(record, parentIds);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    public Task CommitAsync(string name, string key, IReadOnlyDictionary<string, string>? labels = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return _store.WriteAsync((name, key, labels), (s, a) =>
        {
            var record = _metadata.Require(s, a.key);
            if (record.Kind != SnapshotKind.Active)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"snapshot \"{a.key}\" is {record.Kind.ToString().ToLowerInvariant()}; only active snapshots can be committed");
            if (_metadata.Get(s, a.name) is not null) throw Exists(a.name);
            _metadata.Commit(s, record.Id, a.name, a.labels ?? record.Labels, _time.GetUtcNow());
            return 0;
        }, cancellationToken);
    }

    public async Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        long renamed = -1; // the id whose directory the transaction renamed, for undoing it if the commit fails
        try
        {
            await _store.WriteAsync(key, (s, k) =>
            {
                var record = _metadata.Require(s, k);
                var children = _metadata.Children(s, record.Id);
                if (children.Count > 0)
                    throw new HullException(ErrorKind.FailedPrecondition,
                        $"snapshot \"{k}\" has {children.Count} child snapshot(s) ({string.Join(", ", children.Take(5).Select(c => $"\"{c}\""))}" +
                        $"{(children.Count > 5 ? ", …" : "")}); remove them first");
                _metadata.Delete(s, record.Id);
                if (Directory.Exists(SnapshotDirectory(record.Id)))
                {
                    Directory.Move(SnapshotDirectory(record.Id), RemovingDirectory(record.Id)); // last, as in CreateAsync
                    renamed = record.Id;
                }
                return 0;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch when (renamed >= 0)
        {
            RestoreDirectory(renamed); // the commit failed after the rename: the snapshot still exists
            throw;
        }
        if (renamed < 0) return;
        FileSync.SyncDirectory(Root);
        try
        {
            await Task.Run(() => Directory.Delete(RemovingDirectory(renamed), recursive: true), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The metadata is gone, so the snapshot is; the next cleanup retries the directory.
            Logger.LogWarning(e, "{Snapshotter} snapshotter: removed snapshot {Key}, but deleting {Directory} failed", Name, key, RemovingDirectory(renamed));
        }
    }

    private void RestoreDirectory(long id)
    {
        if (Directory.Exists(RemovingDirectory(id)) && !Directory.Exists(SnapshotDirectory(id)))
            Directory.Move(RemovingDirectory(id), SnapshotDirectory(id));
    }

    public async Task CleanupAsync(CancellationToken cancellationToken)
    {
        var ids = await _store.ReadAsync(s => _metadata.Ids(s), cancellationToken).ConfigureAwait(false);
        foreach (var dir in Directory.EnumerateDirectories(Root))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = Path.GetFileName(dir);
            if (name.StartsWith(NewPrefix, StringComparison.Ordinal))
            {
                Delete(dir, "an interrupted prepare");
            }
            else if (name.StartsWith(RemovingPrefix, StringComparison.Ordinal) && long.TryParse(name.AsSpan(RemovingPrefix.Length), out long removing))
            {
                // Still recorded: the process died after the rename but before the removal committed.
                if (ids.Contains(removing) && !Directory.Exists(SnapshotDirectory(removing)))
                {
                    Logger.LogWarning("{Snapshotter} snapshotter: snapshot {Id} was not removed (interrupted); restoring its directory", Name, removing);
                    RestoreDirectory(removing);
                }
                else
                {
                    Delete(dir, "an interrupted removal");
                }
            }
            else if (long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out long id) && !ids.Contains(id))
            {
                Delete(dir, "a snapshot without metadata");
            }
        }
        foreach (var id in ids.Where(id => !Directory.Exists(SnapshotDirectory(id))))
            Logger.LogWarning("{Snapshotter} snapshotter: snapshot {Id} is recorded but its directory {Directory} is missing", Name, id, SnapshotDirectory(id));
    }

    private void Delete(string dir, string what)
    {
        Logger.LogInformation("{Snapshotter} snapshotter: deleting {Directory}, left by {What}", Name, dir, what);
        Directory.Delete(dir, recursive: true);
    }

    private HullException Exists(string key) => new(ErrorKind.AlreadyExists, $"snapshot \"{key}\" already exists in the {Name} snapshotter");

    private protected static void MakeDirectory(string path, UnixFileMode mode)
    {
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, mode); // exactly, whatever the umask
    }

    private protected static readonly UnixFileMode Mode0755 = (UnixFileMode)0b111_101_101;
    private protected static readonly UnixFileMode Mode0711 = (UnixFileMode)0b111_001_001;
}
