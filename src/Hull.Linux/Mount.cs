using System.Runtime.InteropServices;
using Hull.Linux.Namespaces;

namespace Hull.Linux;

/// <summary>
/// One mount to perform, in the form containerd's snapshotters return (and OCI runtime specs use):
/// a file system type, a source and fstab-style options, e.g.
/// <c>overlay overlay [index=off, lowerdir=a:b, upperdir=u, workdir=w]</c> or <c>bind /x [ro, rbind]</c>.
/// </summary>
public sealed record Mount(string Type, string Source, IReadOnlyList<string> Options)
{
    // Structural, so two mount lists compare by content (the record default compares the option list by reference).
    public bool Equals(Mount? other) =>
        other is not null && Type == other.Type && Source == other.Source && Options.SequenceEqual(other.Options);

    public override int GetHashCode() => HashCode.Combine(Type, Source, Options.Count);

    public override string ToString() => $"{Type} {Source} [{string.Join(',', Options)}]";

    /// <summary>
    /// Mounts this on <paramref name="target"/> (a read-only bind needs a second, remount call). containerd's
    /// <c>uidmap=</c>/<c>gidmap=</c> options make an idmapped bind, or an overlay whose lower layers are idmapped (an
    /// overlay itself cannot be); <c>rro</c> makes a bind read-only all the way down. <paramref name="idMaps"/> gives the
    /// user namespaces of the mappings (a pod's pinned one, or holders shared by a batch; else this mount starts and ends its own).
    /// </summary>
    public void MountAt(string target, IdMapNamespaces? idMaps = null)
    {
        var parsed = MountOptions.Parse(Options);
        bool bind = (parsed.Flags & MountFlags.Bind) != 0;
        if (parsed.Data.Length >= 4096)
            throw new IOException($"mount {Type} on \"{target}\": options are {parsed.Data.Length} bytes, more than the kernel's page-size limit (too many layers?)");
        bool newApi = parsed.UidMap is not null || parsed.RecursiveReadOnly;
        if (newApi)
        {
            if (bind) BindWithAttributes(target, parsed, idMaps);
            else if (Type == "overlay" && !parsed.RecursiveReadOnly) MountIdMappedOverlay(target, parsed, idMaps);
            else throw new IOException($"mount {Type} on \"{target}\": idmapping and \"rro\" apply to binds and overlays only");
        }
        else
        {
            // A bind mount ignores every flag but MS_BIND/MS_REC on the first call; they take effect on a remount.
            var first = bind ? parsed.Flags & (MountFlags.Bind | MountFlags.Rec) : parsed.Flags;
            if (NativeMount.mount(Source, target, bind ? null : Type, (nuint)first, parsed.Data.Length == 0 ? null : parsed.Data) != 0)
                throw SyscallException.Last($"mount {Type} \"{Source}\" on", target);
        }
        try
        {
            // What the new mount API already set (read-only) needs no remount.
            var remount = parsed.Flags & ~(MountFlags.Bind | MountFlags.Rec | (newApi ? MountFlags.ReadOnly : MountFlags.None));
            if (bind && remount != 0 &&
                NativeMount.mount(null, target, null, (nuint)(parsed.Flags | MountFlags.Remount), null) != 0)
                throw SyscallException.Last("remount (bind) ", target);
            if (parsed.Propagation != 0 && NativeMount.mount(null, target, null, (nuint)parsed.Propagation, null) != 0)
                throw SyscallException.Last("mount (propagation)", target);
        }
        catch
        {
            Mounts.Unmount(target, detach: true);
            throw;
        }
    }

    private void BindWithAttributes(string target, ParsedMountOptions parsed, IdMapNamespaces? idMaps)
    {
        using var own = parsed.UidMap is not null && idMaps is null ? new IdMapNamespaces() : null;
        using var userns = parsed.UidMap is { } uid ? (idMaps ?? own)!.Open(uid, parsed.GidMap!.Value) : null;
        bool readOnly = (parsed.Flags & MountFlags.ReadOnly) != 0;
        MountTree.Bind(Source, target, new BindAttributes
        {
            Recursive = (parsed.Flags & MountFlags.Rec) != 0,
            ReadOnly = parsed.RecursiveReadOnly ? BindReadOnly.Recursive : readOnly ? BindReadOnly.Top : BindReadOnly.No,
            IdMapUserNamespace = userns,
        });
    }

    /// <summary>
    /// containerd's idmapped overlay: each lower layer is bound idmapped on a directory beside the target, the overlay is
    /// mounted on those, and the binds are detached again (the overlay holds its own references to its layers).
    /// </summary>
    private void MountIdMappedOverlay(string target, ParsedMountOptions parsed, IdMapNamespaces? idMaps)
    {
        var data = parsed.Data.Split(',').ToList();
        int lowerIndex = data.FindIndex(o => o.StartsWith("lowerdir=", StringComparison.Ordinal));
        if (lowerIndex < 0) throw new IOException($"overlay on \"{target}\": idmapping needs lowerdir layers, and there are none");
        var lowers = data[lowerIndex]["lowerdir=".Length..].Split(':');
        string parent = Path.GetDirectoryName(Path.GetFullPath(target)) ?? "/";
        string scratch = Path.Combine(parent, $".{Path.GetFileName(target)}.idmap-{Guid.NewGuid():N}");
        var bound = new List<string>();
        try
        {
            using var own = idMaps is null ? new IdMapNamespaces() : null;
            using var userns = (idMaps ?? own)!.Open(parsed.UidMap!.Value, parsed.GidMap!.Value);
            for (int i = 0; i < lowers.Length; i++)
            {
                string layer = Path.Combine(scratch, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Directory.CreateDirectory(layer);
                MountTree.Bind(lowers[i], layer, new BindAttributes { Recursive = false, IdMapUserNamespace = userns });
                bound.Add(layer);
            }
            data[lowerIndex] = "lowerdir=" + string.Join(':', bound);
            string options = string.Join(',', data);
            if (options.Length >= 4096)
                throw new IOException($"mount overlay on \"{target}\": options are {options.Length} bytes, more than the kernel's page-size limit (too many layers?)");
            if (NativeMount.mount(Source, target, Type, (nuint)parsed.Flags, options) != 0)
                throw SyscallException.Last($"mount {Type} \"{Source}\" (idmapped layers) on", target);
        }
        finally
        {
            foreach (var layer in bound) Mounts.Unmount(layer, detach: true);
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }
}

/// <summary>Performing and undoing a list of <see cref="Mount"/>s.</summary>
public static partial class Mounts
{
    private const int MntDetach = 2;

    /// <summary>Mounts each in order on <paramref name="target"/>; if one fails, unmounts the ones done.</summary>
    /// <param name="idMaps">Where idmapped mounts take their user namespaces from (see <see cref="Mount.MountAt"/>).</param>
    public static void MountAll(IReadOnlyList<Mount> mounts, string target, IdMapNamespaces? idMaps = null)
    {
        for (int i = 0; i < mounts.Count; i++)
        {
            try
            {
                mounts[i].MountAt(target, idMaps);
            }
            catch
            {
                for (int j = 0; j < i; j++) Unmount(target, detach: true);
                throw;
            }
        }
    }

    /// <summary>umount2(2). Returns false when nothing was mounted there (EINVAL) or the target is gone.</summary>
    public static bool Unmount(string target, bool detach = false)
    {
        if (NativeMount.umount2(target, detach ? MntDetach : 0) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is Errno.EINVAL or Errno.ENOENT) return false;
        throw new SyscallException("umount2", target, errno);
    }

    /// <summary>Unmounts everything stacked on <paramref name="target"/>.</summary>
    public static void UnmountAll(string target, bool detach = false)
    {
        for (int i = 0; i < 64 && Unmount(target, detach); i++) { }
    }
}

[Flags]
internal enum MountFlags : ulong
{
    None = 0,
    ReadOnly = 1,
    NoSuid = 2,
    NoDev = 4,
    NoExec = 8,
    Synchronous = 16,
    Remount = 32,
    DirSync = 128,
    NoAtime = 1024,
    NoDirAtime = 2048,
    Bind = 4096,
    Rec = 16384,
    Unbindable = 1 << 17,
    Private = 1 << 18,
    Slave = 1 << 19,
    Shared = 1 << 20,
    RelAtime = 1 << 21,
    StrictAtime = 1 << 24,
}

/// <summary>fstab-style options → mount(2) flags, propagation flags and the file system's data string (like containerd's parseMountOptions).</summary>
internal static class MountOptions
{
    private static readonly Dictionary<string, (bool Clear, MountFlags Flag)> Flags = new(StringComparer.Ordinal)
    {
        ["defaults"] = (false, MountFlags.None),
        ["ro"] = (false, MountFlags.ReadOnly),
        ["rw"] = (true, MountFlags.ReadOnly),
        ["bind"] = (false, MountFlags.Bind),
        ["rbind"] = (false, MountFlags.Bind | MountFlags.Rec),
        ["nosuid"] = (false, MountFlags.NoSuid),
        ["suid"] = (true, MountFlags.NoSuid),
        ["nodev"] = (false, MountFlags.NoDev),
        ["dev"] = (true, MountFlags.NoDev),
        ["noexec"] = (false, MountFlags.NoExec),
        ["exec"] = (true, MountFlags.NoExec),
        ["sync"] = (false, MountFlags.Synchronous),
        ["async"] = (true, MountFlags.Synchronous),
        ["dirsync"] = (false, MountFlags.DirSync),
        ["remount"] = (false, MountFlags.Remount),
        ["noatime"] = (false, MountFlags.NoAtime),
        ["atime"] = (true, MountFlags.NoAtime),
        ["nodiratime"] = (false, MountFlags.NoDirAtime),
        ["diratime"] = (true, MountFlags.NoDirAtime),
        ["relatime"] = (false, MountFlags.RelAtime),
        ["norelatime"] = (true, MountFlags.RelAtime),
        ["strictatime"] = (false, MountFlags.StrictAtime),
    };

    private static readonly Dictionary<string, MountFlags> Propagation = new(StringComparer.Ordinal)
    {
        ["private"] = MountFlags.Private,
        ["rprivate"] = MountFlags.Private | MountFlags.Rec,
        ["slave"] = MountFlags.Slave,
        ["rslave"] = MountFlags.Slave | MountFlags.Rec,
        ["shared"] = MountFlags.Shared,
        ["rshared"] = MountFlags.Shared | MountFlags.Rec,
        ["unbindable"] = MountFlags.Unbindable,
        ["runbindable"] = MountFlags.Unbindable | MountFlags.Rec,
    };

    public static ParsedMountOptions Parse(IReadOnlyList<string> options)
    {
        var flags = MountFlags.None;
        var propagation = MountFlags.None;
        var data = new List<string>();
        IdMapping? uidMap = null, gidMap = null;
        bool recursiveReadOnly = false;
        foreach (var option in options)
        {
            if (Flags.TryGetValue(option, out var f))
                flags = f.Clear ? flags & ~f.Flag : flags | f.Flag;
            else if (Propagation.TryGetValue(option, out var p))
                propagation |= p;
            else if (option == "rro")
                (recursiveReadOnly, flags) = (true, flags | MountFlags.ReadOnly);
            else if (option.StartsWith("uidmap=", StringComparison.Ordinal))
                uidMap = IdMap(option);
            else if (option.StartsWith("gidmap=", StringComparison.Ordinal))
                gidMap = IdMap(option);
            else
                data.Add(option);
        }
        if ((uidMap is null) != (gidMap is null))
            throw new IOException($"mount options [{string.Join(',', options)}]: idmapping needs both uidmap= and gidmap=");
        return new ParsedMountOptions(flags, propagation, string.Join(',', data), uidMap, gidMap, recursiveReadOnly);
    }

    private static IdMapping IdMap(string option) =>
        IdMapping.TryParse(option[(option.IndexOf('=') + 1)..]) ?? throw new IOException($"mount option \"{option}\" is not container:host:size");
}

/// <summary>Mount options taken apart: mount(2) flags, propagation, the file system's data, and what the new mount API does.</summary>
internal sealed record ParsedMountOptions(MountFlags Flags, MountFlags Propagation, string Data, IdMapping? UidMap, IdMapping? GidMap,
    bool RecursiveReadOnly);

internal static partial class NativeMount
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string? source, string target, string? fstype, nuint flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);
}
