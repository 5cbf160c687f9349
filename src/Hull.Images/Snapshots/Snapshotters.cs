using Hull.Core;
using Hull.Core.Metadata;
using Hull.Linux;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Images.Snapshots;

/// <summary>Choosing and opening the snapshotter.</summary>
public static class Snapshotters
{
    public const string Overlay = "overlayfs";
    public const string Native = "native";

    /// <summary>
    /// Opens the snapshotter named <paramref name="name"/> (overlayfs when null, falling back to native
    /// with a warning when overlayfs cannot be mounted under the root), after cleaning what a crash left.
    /// </summary>
    /// <param name="slowChown">overlayfs's <c>slow_chown</c>: copy and chown layers for user-namespaced containers where idmapping fails.</param>
    public static async Task<ISnapshotter> OpenAsync(string hullRoot, MetadataStore store, string? name = null, ILogger? logger = null,
        CancellationToken cancellationToken = default, bool slowChown = false)
    {
        logger ??= NullLogger.Instance;
        DirectorySnapshotter snapshotter;
        switch (name)
        {
            case null or Overlay:
                string snapshots = Path.Combine(Path.GetFullPath(hullRoot), "snapshots");
                Directory.CreateDirectory(snapshots);
                string? problem = OverlaySupport.Check(snapshots);
                if (problem is null)
                {
                    snapshotter = new OverlaySnapshotter(hullRoot, store, logger, slowChown: slowChown);
                }
                else if (name is null)
                {
                    logger.LogWarning("overlayfs cannot be used under {Directory} ({Problem}); using the native (copying) snapshotter", snapshots, problem);
                    snapshotter = new NativeSnapshotter(hullRoot, store, logger);
                }
                else
                {
                    throw new HullException(ErrorKind.FailedPrecondition, $"the overlayfs snapshotter cannot be used under \"{snapshots}\": {problem}");
                }
                break;
            case Native:
                snapshotter = new NativeSnapshotter(hullRoot, store, logger);
                break;
            default:
                throw new HullException(ErrorKind.InvalidArgument, $"unknown snapshotter \"{name}\" (known: {Overlay}, {Native})");
        }
        await snapshotter.CleanupAsync(cancellationToken).ConfigureAwait(false);
        return snapshotter;
    }
}

/// <summary>Whether overlayfs works on a directory's file system, found by trying (containerd's overlayutils.Supported).</summary>
public static class OverlaySupport
{
    /// <summary>Mounts an overlay with two lower layers in a temporary directory under <paramref name="directory"/>; null when it works, else why not.</summary>
    public static string? Check(string directory) => OverlayCheck.Try(directory);
}
