using Hull.Core;
using Hull.Images.Snapshots;
using Hull.Linux;

namespace Hull.Images.Unpack;

/// <summary>
/// Writes tar entries into one directory, confined to it: names with ".." are refused, absolute
/// names are taken relative to the root, and every parent component is checked with lstat, so an
/// entry is never written through a symlink (refused, naming the layer and the entry) — the
/// classic "a -> /etc, then a/passwd" escape. Directory times are set last, after their contents.
/// </summary>
internal sealed class LayerExtraction(string root, LayerApplyOptions options)
{
    private const string OpaqueMarker = ".wh..wh..opq";
    private const string WhiteoutPrefix = ".wh.";
    private const string OverlayOpaqueXattr = "trusted.overlay.opaque";

    private readonly string _layer = options.LayerDigest ?? "(unnamed)";
    private readonly List<(string Path, long Atime, uint AtimeNs, long Mtime, uint MtimeNs)> _directoryTimes = [];
    private readonly HashSet<string> _unpacked = new(StringComparer.Ordinal); // relative paths this layer wrote (native opaque dirs keep them)
    private readonly byte[] _buffer = new byte[128 * 1024];
    private bool Overlay => options.Whiteouts == WhiteoutMode.Overlay;

    public async Task ApplyAsync(LayerTarEntry entry, CancellationToken cancellationToken)
    {
        var parts = Split(entry.Name, entry.Name);
        if (parts.Length == 0)
        {
            if (entry.Kind != LayerEntryKind.Directory) throw Reject(entry.Name, "would replace the layer root with a non-directory");
            SetMetadata(root, entry);
            return;
        }
        string name = parts[^1];
        bool whiteout = name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal);
        // Deleting needs no parents: if they are missing there is nothing to hide.
        if (!EnsureParents(parts, entry.Name, create: !whiteout || Overlay)) return;
        if (whiteout)
        {
            ApplyWhiteout(entry, parts);
            return;
        }
        string relative = string.Join('/', parts);
        string path = Full(relative);

        string? linkTarget = entry.Kind == LayerEntryKind.HardLink ? ResolveHardLinkTarget(entry) : null;
        if (linkTarget == path) return; // a link to itself: nothing to do, and removing "it" first would lose the file

        if (FileStatus.TryGet(path) is { } existing && !(existing.IsDirectory && entry.Kind == LayerEntryKind.Directory))
            RemoveAll(path, existing);

        switch (entry.Kind)
        {
            case LayerEntryKind.Directory:
                if (!Directory.Exists(path)) Directory.CreateDirectory(path);
                break;
            case LayerEntryKind.File:
                await WriteFileAsync(path, entry, cancellationToken).ConfigureAwait(false);
                break;
            case LayerEntryKind.Symlink:
                if (entry.LinkName.Length == 0 || entry.LinkName.Contains('\0')) throw Reject(entry.Name, "is a symlink with an empty or invalid target");
                File.CreateSymbolicLink(path, entry.LinkName);
                break;
            case LayerEntryKind.HardLink:
                FileNodes.CreateHardLink(linkTarget!, path);
                _unpacked.Add(relative);
                return; // it shares the target's inode, owner, mode and times
            case LayerEntryKind.CharacterDevice:
                FileNodes.CreateCharacterDevice(path, entry.Mode, entry.DeviceMajor, entry.DeviceMinor);
                break;
            case LayerEntryKind.BlockDevice:
                FileNodes.CreateBlockDevice(path, entry.Mode, entry.DeviceMajor, entry.DeviceMinor);
                break;
            case LayerEntryKind.Fifo:
                FileNodes.CreateFifo(path, entry.Mode);
                break;
        }
        SetMetadata(path, entry);
        _unpacked.Add(relative);
    }

    /// <summary>Sets the deferred directory times; call after the last entry.</summary>
    public void Finish()
    {
        foreach (var (path, atime, atimeNs, mtime, mtimeNs) in _directoryTimes)
        {
            // A later entry of the layer may have replaced or whited out the directory.
            if (FileStatus.TryGet(path) is { IsDirectory: true }) FileNodes.SetTimes(path, atime, atimeNs, mtime, mtimeNs);
        }
    }

    // ---- entries -------------------------------------------------------------------------------

    private async Task WriteFileAsync(string path, LayerTarEntry entry, CancellationToken cancellationToken)
    {
        // CreateNew is O_CREAT|O_EXCL: it never opens through a symlink that might sit at this name.
        await using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        int read;
        while ((read = await entry.Data.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false)) > 0)
            await file.WriteAsync(_buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
    }

    private void ApplyWhiteout(LayerTarEntry entry, string[] parts)
    {
        string parentRelative = string.Join('/', parts[..^1]);
        string parent = parentRelative.Length == 0 ? root : Full(parentRelative);
        string name = parts[^1];
        if (name == OpaqueMarker)
        {
            if (Overlay)
            {
                ExtendedAttributes.Set(parent, OverlayOpaqueXattr, "y"u8);
                return;
            }
            // Hide everything below that an earlier layer put there; keep what this layer wrote.
            foreach (var child in Directory.EnumerateFileSystemEntries(parent))
            {
                string childRelative = Join(parentRelative, Path.GetFileName(child));
                if (!_unpacked.Contains(childRelative) && FileStatus.TryGet(child) is { } status) RemoveAll(child, status);
            }
            return;
        }
        if (name.StartsWith(WhiteoutPrefix + WhiteoutPrefix, StringComparison.Ordinal)) return; // aufs bookkeeping (.wh..wh.plnk, …)

        string hidden = name[WhiteoutPrefix.Length..];
        if (hidden is "" or "." or "..") throw Reject(entry.Name, "is a whiteout of an invalid name");
        string target = Path.Combine(parent, hidden);
        if (FileStatus.TryGet(target) is { } existing) RemoveAll(target, existing);
        if (Overlay)
        {
            FileNodes.CreateCharacterDevice(target, 0, 0, 0);
            FileNodes.SetOwner(target, entry.Uid, entry.Gid);
        }
    }

    /// <summary>The absolute path a hard link points to, confined like any entry; copied up from a lower layer if needed.</summary>
    private string ResolveHardLinkTarget(LayerTarEntry entry)
    {
        var parts = Split(entry.LinkName, entry.Name);
        if (parts.Length == 0) throw Reject(entry.Name, "is a hard link to the layer root");
        string path = Full(string.Join('/', parts));
        FileStatus? status = EnsureParents(parts, entry.Name, create: false) ? FileStatus.TryGet(path) : null;
        if (status is null && Overlay && FindInParents(parts) is { } lower && !lower.Status.IsDirectory)
        {
            EnsureParents(parts, entry.Name, create: true);
            FileTreeCopy.CopyNode(lower.Path, path, lower.Status);
            status = FileStatus.Get(path);
        }
        if (status is null) throw Reject(entry.Name, $"is a hard link to \"{entry.LinkName}\", which is not in the layer");
        if (status.Value.IsDirectory) throw Reject(entry.Name, $"is a hard link to the directory \"{entry.LinkName}\"");
        return path;
    }

    /// <summary>Owner, xattrs, mode (after chown, which clears setuid bits and capabilities), then times.</summary>
    private void SetMetadata(string path, LayerTarEntry entry)
    {
        FileNodes.SetOwner(path, entry.Uid, entry.Gid);
        foreach (var (name, value) in entry.Xattrs)
        {
            // A layer must not forge overlayfs' own metadata (opaque, redirect, origin) in an upper directory.
            if (name.StartsWith("trusted.overlay.", StringComparison.Ordinal)) continue;
            try
            {
                ExtendedAttributes.Set(path, name, value);
            }
            catch (SyscallException e) when (e.Errno == Errno.EOPNOTSUPP)
            {
                // Namespaces the file system does not support (containerd skips them too).
            }
        }
        if (entry.Kind != LayerEntryKind.Symlink) File.SetUnixFileMode(path, entry.Mode);
        var (atime, atimeNs) = entry.Atime ?? (entry.MtimeSeconds, entry.MtimeNanoseconds);
        if (entry.Kind == LayerEntryKind.Directory)
            _directoryTimes.Add((path, atime, atimeNs, entry.MtimeSeconds, entry.MtimeNanoseconds));
        else
            FileNodes.SetTimes(path, atime, atimeNs, entry.MtimeSeconds, entry.MtimeNanoseconds);
    }

    // ---- confinement -----------------------------------------------------------------------------

    /// <summary>The components of a tar name, relative to the root. ".." anywhere is refused rather than clamped.</summary>
    private string[] Split(string name, string entryName)
    {
        if (name.Contains('\0')) throw Reject(entryName, "has a NUL byte in its path");
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains("..")) throw Reject(entryName, $"has a \"..\" component in \"{name}\"; layer paths must stay inside the layer");
        return parts;
    }

    /// <summary>
    /// Checks that every parent of <paramref name="parts"/> is a real directory inside the root.
    /// With <paramref name="create"/>, missing ones are made; without, returns false when one is missing.
    /// </summary>
    private bool EnsureParents(string[] parts, string entryName, bool create)
    {
        string current = root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            current = current + "/" + parts[i];
            var status = FileStatus.TryGet(current);
            if (status is null)
            {
                if (!create) return false;
                CreateParent(current, parts[..(i + 1)]);
                continue;
            }
            if (status.Value.IsSymlink)
                throw Reject(entryName, $"would be written through the symlink \"{string.Join('/', parts[..(i + 1)])}\" -> \"{new FileInfo(current).LinkTarget}\"; " +
                    "Hull does not follow symlinks in layer paths");
            if (!status.Value.IsDirectory)
                throw Reject(entryName, $"has the parent \"{string.Join('/', parts[..(i + 1)])}\", which is not a directory");
        }
        return true;
    }

    /// <summary>A directory the tar does not list: in an overlay upper it copies the lower directory's owner and mode.</summary>
    private void CreateParent(string path, string[] parts)
    {
        Directory.CreateDirectory(path);
        _unpacked.Add(string.Join('/', parts));
        if (Overlay && FindInParents(parts) is { Status.IsDirectory: true } lower)
        {
            FileNodes.SetOwner(path, lower.Status.Uid, lower.Status.Gid);
            File.SetUnixFileMode(path, lower.Status.Permissions);
            _directoryTimes.Add((path, lower.Status.AtimeSeconds, lower.Status.AtimeNanoseconds, lower.Status.MtimeSeconds, lower.Status.MtimeNanoseconds));
        }
        else
        {
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }
    }

    /// <summary>The topmost lower layer entry at <paramref name="parts"/>, found without following symlinks; null if hidden or absent.</summary>
    private (string Path, FileStatus Status)? FindInParents(string[] parts)
    {
        foreach (var lowerRoot in options.ParentDirectories)
        {
            string current = lowerRoot;
            for (int i = 0; i < parts.Length; i++)
            {
                current = current + "/" + parts[i];
                var status = FileStatus.TryGet(current);
                if (status is null) break; // not in this layer: look further down
                bool last = i == parts.Length - 1;
                if (IsOverlayWhiteout(status.Value)) return null;
                if (last) return (current, status.Value);
                if (!status.Value.IsDirectory) return null; // a file or symlink here hides the lower layers' directory
            }
        }
        return null;
    }

    private static bool IsOverlayWhiteout(FileStatus status) =>
        status.Type == UnixFileType.CharacterDevice && status.RdevMajor == 0 && status.RdevMinor == 0;

    private static void RemoveAll(string path, FileStatus status)
    {
        // Directory.Delete removes symlinks inside the tree without following them.
        if (status.IsDirectory) Directory.Delete(path, recursive: true);
        else File.Delete(path);
    }

    private string Full(string relative) => root + "/" + relative;

    private static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "/" + name;

    private HullException Reject(string entryName, string problem) =>
        new(ErrorKind.InvalidArgument, $"layer {_layer}: entry \"{entryName}\" {problem}");
}
