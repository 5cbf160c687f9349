using System.Runtime.InteropServices;

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

    /// <summary>Mounts this on <paramref name="target"/> (a read-only bind needs a second, remount call).</summary>
    public void MountAt(string target)
    {
        var (flags, propagation, data) = MountOptions.Parse(Options);
        bool bind = (flags & MountFlags.Bind) != 0;
        if (data.Length >= 4096)
            throw new IOException($"mount {Type} on \"{target}\": options are {data.Length} bytes, more than the kernel's page-size limit (too many layers?)");
        // A bind mount ignores every flag but MS_BIND/MS_REC on the first call; they take effect on a remount.
        var first = bind ? flags & (MountFlags.Bind | MountFlags.Rec) : flags;
        if (NativeMount.mount(Source, target, bind ? null : Type, (nuint)first, data.Length == 0 ? null : data) != 0)
            throw SyscallException.Last($"mount {Type} \"{Source}\" on", target);
        try
        {
            if (bind && (flags & ~(MountFlags.Bind | MountFlags.Rec)) != 0 &&
                NativeMount.mount(null, target, null, (nuint)(flags | MountFlags.Remount), null) != 0)
                throw SyscallException.Last("remount (bind) ", target);
            if (propagation != 0 && NativeMount.mount(null, target, null, (nuint)propagation, null) != 0)
                throw SyscallException.Last("mount (propagation)", target);
        }
        catch
        {
            Mounts.Unmount(target, detach: true);
            throw;
        }
    }
}

/// <summary>Performing and undoing a list of <see cref="Mount"/>s.</summary>
public static partial class Mounts
{
    private const int MntDetach = 2;

    /// <summary>Mounts each in order on <paramref name="target"/>; if one fails, unmounts the ones done.</summary>
    public static void MountAll(IReadOnlyList<Mount> mounts, string target)
    {
        for (int i = 0; i < mounts.Count; i++)
        {
            try
            {
                mounts[i].MountAt(target);
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

    public static (MountFlags Flags, MountFlags Propagation, string Data) Parse(IReadOnlyList<string> options)
    {
        var flags = MountFlags.None;
        var propagation = MountFlags.None;
        var data = new List<string>();
        foreach (var option in options)
        {
            if (Flags.TryGetValue(option, out var f))
                flags = f.Clear ? flags & ~f.Flag : flags | f.Flag;
            else if (Propagation.TryGetValue(option, out var p))
                propagation |= p;
            else
                data.Add(option);
        }
        return (flags, propagation, string.Join(',', data));
    }
}

internal static partial class NativeMount
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string? source, string target, string? fstype, nuint flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);
}
