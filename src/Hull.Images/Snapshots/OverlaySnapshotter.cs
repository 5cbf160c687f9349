using Hull.Core;
using Hull.Core.Metadata;
using Hull.Linux;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Snapshots;

/// <summary>
/// Snapshots as overlayfs layers (containerd's overlayfs snapshotter): each has an <c>fs</c>
/// directory holding only its own changes; an active snapshot mounts as an overlay of its parents'
/// fs directories (lowerdir) with its own fs as upperdir and a work directory; a snapshot without
/// parents, and a view of a single layer, is a bind mount.
/// </summary>
/// <remarks>
/// User namespaces (containerd's remap-ids capability): an active snapshot prepared with the
/// <see cref="SnapshotLabels.UidMapping"/> and <see cref="SnapshotLabels.GidMapping"/> labels has its upper directory
/// owned by the mapped root and mounts with <c>uidmap=</c>/<c>gidmap=</c>, which idmap its lower layers (an overlay
/// itself cannot be idmapped). Where the kernel or the file system cannot idmap, <paramref name="slowChown"/> copies the
/// parents into the snapshot with shifted owners instead (slow, and the copy is the container's own); without it such a
/// prepare fails with containerd's message.
/// </remarks>
public sealed class OverlaySnapshotter(string hullRoot, MetadataStore store, ILogger? logger = null, TimeProvider? time = null,
    bool slowChown = false)
    : DirectorySnapshotter(Snapshotters.Overlay, hullRoot, store, logger, time)
{
    private readonly Lazy<string?> _idMapProblem = new(() => OverlayCheck.Try(Path.Combine(Path.GetFullPath(hullRoot), "snapshots"), idMapped: true));

    /// <summary>Null when idmapped overlays work on this snapshotter's file system, else why not (found once, by trying).</summary>
    public string? IdMapProblem => _idMapProblem.Value;

    private protected override IReadOnlyDictionary<string, string>? Populate(PopulateRequest request, CancellationToken cancellationToken)
    {
        string fs = Path.Combine(request.Directory, "fs");
        MakeDirectory(fs, Mode0755);
        var shift = request.Kind == SnapshotKind.Active ? SnapshotLabels.ShiftOf(request.Labels) : null;
        if (request.Kind == SnapshotKind.Active) MakeDirectory(Path.Combine(request.Directory, "work"), Mode0711);
        if (request.Parent is null)
        {
            if (shift is not null) FileNodes.SetOwner(fs, shift.Uid(0), shift.Gid(0));
            return request.Labels;
        }
        // The upper directory is the merged root: it should be owned like the image's root (as the mapped root sees it).
        var root = FileStatus.Get(FsDirectory(request.Parent.Id));
        FileNodes.SetOwner(fs, shift?.Uid(root.Uid) ?? root.Uid, shift?.Gid(root.Gid) ?? root.Gid);
        if (shift is null || IdMapProblem is null) return request.Labels;

        if (!slowChown)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"snapshotter \"{Name}\" doesn't support idmap mounts on this host, configure `slow_chown` to allow a slower and expensive fallback ({IdMapProblem})");
        CopyShifted(request, fs, shift);
        return new Dictionary<string, string>(request.Labels!, StringComparer.Ordinal) { [SnapshotLabels.ChownCopy] = "true" };
    }

    /// <summary>slow_chown: the merged parents copied into the snapshot's own directory with shifted owners; it then mounts as a bind.</summary>
    private void CopyShifted(PopulateRequest request, string fs, IdShift shift)
    {
        Logger.LogWarning("copying {Layers} layers with shifted owners for a user-namespaced container (slow_chown; idmapped overlays do not work here: {Problem})",
            request.ParentChain.Count, IdMapProblem);
        if (request.ParentChain.Count == 1)
        {
            FileTreeCopy.CopyDirectory(FsDirectory(request.ParentChain[0]), fs, shift);
            return;
        }
        // An overlay of the lower layers only (no upper directory needs two or more), read once, unmounted at once.
        string merged = Path.Combine(request.Directory, "merged");
        Directory.CreateDirectory(merged);
        new Mount("overlay", "overlay", ["ro", "index=off", $"lowerdir={string.Join(':', request.ParentChain.Select(FsDirectory))}"]).MountAt(merged);
        try
        {
            FileTreeCopy.CopyDirectory(merged, fs, shift);
        }
        finally
        {
            Mounts.Unmount(merged, detach: true);
            Directory.Delete(merged);
        }
    }

    private protected override IReadOnlyList<Mount> MountsOf(SnapshotRecord snapshot, IReadOnlyList<long> parentIds)
    {
        bool view = snapshot.Kind == SnapshotKind.View;
        if (parentIds.Count == 0 || snapshot.Labels.ContainsKey(SnapshotLabels.ChownCopy))
            return [new Mount("bind", FsDirectory(snapshot.Id), [view ? "ro" : "rw", "rbind"])];
        if (view && parentIds.Count == 1)
            return [new Mount("bind", FsDirectory(parentIds[0]), ["ro", "rbind"])];

        // index=off: the inode index ties a lower layer to the first overlay that used it, which shared layers must not be.
        var options = new List<string> { "index=off" };
        if (!view)
        {
            options.Add($"workdir={WorkDirectory(snapshot.Id)}");
            options.Add($"upperdir={FsDirectory(snapshot.Id)}");
            if (SnapshotLabels.ShiftOf(snapshot.Labels) is { } shift)
            {
                options.Add($"uidmap={shift.UidMap}");
                options.Add($"gidmap={shift.GidMap}");
            }
        }
        options.Add($"lowerdir={string.Join(':', parentIds.Select(FsDirectory))}");
        return [new Mount("overlay", "overlay", options)];
    }
}
