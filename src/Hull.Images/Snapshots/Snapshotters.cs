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
    public static async Task<ISnapshotter> OpenAsync(string hullRoot, MetadataStore store, string? name = null, ILogger? logger = null,
        CancellationToken cancellationToken = default)
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
                    snapshotter = new OverlaySnapshotter(hullRoot, store, logger);
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
    public static string? Check(string directory)
    {
        string temp = Path.Combine(directory, "overlay-check-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var sub in new[] { "lower1", "lower2", "upper", "work", "merged" }) Directory.CreateDirectory(Path.Combine(temp, sub));
            string merged = Path.Combine(temp, "merged");
            new Mount("overlay", "overlay",
            [
                "index=off",
                $"lowerdir={Path.Combine(temp, "lower2")}:{Path.Combine(temp, "lower1")}",
                $"upperdir={Path.Combine(temp, "upper")}",
                $"workdir={Path.Combine(temp, "work")}",
            ]).MountAt(merged);
            Mounts.Unmount(merged, detach: true);
            return null;
        }
        catch (IOException e)
        {
            return e.Message;
        }
        finally
        {
            try
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            catch (IOException)
            {
                // Best effort; a leftover check directory is harmless and not a snapshot id.
            }
        }
    }
}
