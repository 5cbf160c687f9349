using Hull.Linux;

namespace Hull.Images.Snapshots;

/// <summary>Disk usage of a snapshot: allocated bytes and inodes, each hard-linked inode counted once (like du).</summary>
public readonly record struct SnapshotUsage(long Size, long Inodes)
{
    public static SnapshotUsage Measure(string path, CancellationToken cancellationToken)
    {
        var seen = new HashSet<(uint, uint, ulong)>();
        long size = 0, inodes = 0;
        var pending = new Stack<string>();
        pending.Push(path);
        while (pending.TryPop(out var current))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (FileStatus.TryGet(current) is not { } status) continue; // removed while walking
            if (!seen.Add((status.DeviceMajor, status.DeviceMinor, status.Inode))) continue;
            inodes++;
            size += status.Blocks * 512;
            if (status.IsDirectory)
                foreach (var child in Directory.EnumerateFileSystemEntries(current)) pending.Push(child);
        }
        return new SnapshotUsage(size, inodes);
    }
}
