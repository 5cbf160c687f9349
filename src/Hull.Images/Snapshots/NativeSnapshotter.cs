using Hull.Core.Metadata;
using Hull.Linux;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Snapshots;

/// <summary>
/// Snapshots as full copies (containerd's native snapshotter): a snapshot's fs directory starts as
/// a copy of its parent's and is bind-mounted. The fallback where overlayfs cannot be mounted.
/// </summary>
public sealed class NativeSnapshotter(string hullRoot, MetadataStore store, ILogger? logger = null, TimeProvider? time = null)
    : DirectorySnapshotter(Snapshotters.Native, hullRoot, store, logger, time)
{
    /// <summary>A copy anyway: with containerd's id-mapping labels the copy's owners are shifted into the mapping as it is made.</summary>
    private protected override IReadOnlyDictionary<string, string>? Populate(PopulateRequest request, CancellationToken cancellationToken)
    {
        string fs = Path.Combine(request.Directory, "fs");
        var shift = request.Kind == SnapshotKind.Active ? SnapshotLabels.ShiftOf(request.Labels) : null;
        if (request.Parent is null)
        {
            MakeDirectory(fs, Mode0755);
            if (shift is not null) FileNodes.SetOwner(fs, shift.Uid(0), shift.Gid(0));
        }
        else FileTreeCopy.CopyDirectory(FsDirectory(request.Parent.Id), fs, shift);
        return request.Labels;
    }

    private protected override IReadOnlyList<Mount> MountsOf(SnapshotRecord snapshot, IReadOnlyList<long> parentIds) =>
        [new Mount("bind", FsDirectory(snapshot.Id), [snapshot.Kind == SnapshotKind.View ? "ro" : "rw", "rbind"])];
}
