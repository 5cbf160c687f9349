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
    private protected override void Populate(string directory, SnapshotKind kind, SnapshotRecord? parent, CancellationToken cancellationToken)
    {
        string fs = Path.Combine(directory, "fs");
        if (parent is null) MakeDirectory(fs, Mode0755);
        else FileTreeCopy.CopyDirectory(FsDirectory(parent.Id), fs);
    }

    private protected override IReadOnlyList<Mount> MountsOf(SnapshotRecord snapshot, IReadOnlyList<long> parentIds) =>
        [new Mount("bind", FsDirectory(snapshot.Id), [snapshot.Kind == SnapshotKind.View ? "ro" : "rw", "rbind"])];
}
