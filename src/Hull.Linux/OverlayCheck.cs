using Hull.Linux.Namespaces;

namespace Hull.Linux;

/// <summary>
/// Whether overlayfs works on a directory's file system, found by trying (containerd's overlayutils.Supported and
/// SupportsIDMappedMounts): an overlay of two lower layers mounted in a temporary directory under it, optionally with
/// the lower layers idmapped (Linux 5.19 and a file system that allows idmapped mounts).
/// </summary>
public static class OverlayCheck
{
    /// <summary>Null when the overlay mounts (idmapped when <paramref name="idMapped"/>), else why not.</summary>
    public static string? Try(string directory, bool idMapped = false)
    {
        if (idMapped && !MountTree.Supported) return "the kernel has no mount_setattr (Linux 5.12 or later is needed)";
        string temp = Path.Combine(directory, (idMapped ? "idmap-check-" : "overlay-check-") + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var sub in new[] { "lower1", "lower2", "upper", "work", "merged" }) Directory.CreateDirectory(Path.Combine(temp, sub));
            string merged = Path.Combine(temp, "merged");
            var options = new List<string>
            {
                "index=off",
                $"lowerdir={Path.Combine(temp, "lower2")}:{Path.Combine(temp, "lower1")}",
                $"upperdir={Path.Combine(temp, "upper")}",
                $"workdir={Path.Combine(temp, "work")}",
            };
                    if (idMapped) options.AddRange([$"uidmap={ProbeMapping}", $"gidmap={ProbeMapping}"]);
            new Mount("overlay", "overlay", options).MountAt(merged);
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

    // Any mapping will do; this one maps root inside to ids nothing on the host uses, short of (uid_t)-1, which no range may reach.
    private static readonly IdMapping ProbeMapping = new(0, 0xFFFE0000, 65536);
}
