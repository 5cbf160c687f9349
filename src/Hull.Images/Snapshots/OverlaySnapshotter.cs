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
public sealed class OverlaySnapshotter(string hullRoot, MetadataStore store, ILogger? logger = null, TimeProvider? time = null)
    : DirectorySnapshotter(Snapshotters.Overlay, hullRoot, store, logger, time)
{
    private protected override void Populate(string directory, SnapshotKind kind, SnapshotRecord? parent, CancellationToken cancellationToken)
    {
        string fs = Path.Combine(directory, "fs");
        MakeDirectory(fs, Mode0755);
        if (parent is not null)
        {
            // The upper directory is the merged root: it should be owned like the image's root.
            var root = FileStatus.Get(FsDirectory(parent.Id));
            FileNodes.SetOwner(fs, root.Uid, root.Gid);
        }
        if (kind == SnapshotKind.Active) MakeDirectory(Path.Combine(directory, "work"), Mode0711);
    }

    private protected override IReadOnlyList<Mount> MountsOf(SnapshotRecord snapshot, IReadOnlyList<long> parentIds)
    {
        bool view = snapshot.Kind == SnapshotKind.View;
        if (parentIds.Count == 0)
            return [new Mount("bind", FsDirectory(snapshot.Id), [view ? "ro" : "rw", "rbind"])];
        if (view && parentIds.Count == 1)
            return [new Mount("bind", FsDirectory(parentIds[0]), ["ro", "rbind"])];

        // index=off: the inode index ties a lower layer to the first overlay that used it, which shared layers must not be.
        var options = new List<string> { "index=off" };
        if (!view)
        {
            options.Add($"workdir={WorkDirectory(snapshot.Id)}");
            options.Add($"upperdir={FsDirectory(snapshot.Id)}");
        }
        options.Add($"lowerdir={string.Join(':', parentIds.Select(FsDirectory))}");
        return [new Mount("overlay", "overlay", options)];
    }
}
