using System.Globalization;
using Hull.Core;
using Hull.Linux;
using Hull.Linux.Namespaces;

namespace Hull.Runtime.Spec;

/// <summary>One bind Hull makes for the OCI runtime: <see cref="Mount"/> mounted on <see cref="Target"/>, for the spec's mount at <see cref="Destination"/>.</summary>
public sealed record PreparedMount(Mount Mount, string Target, string Destination, bool IsDirectory);

/// <summary>
/// The binds of a spec that the OCI runtime is handed ready-made: an idmapped bind (<c>uidMappings</c>/<c>gidMappings</c>)
/// or a recursively read-only one (<c>rro</c>). runc 1.1 can make neither, so Hull makes each under the container's
/// directory with the new mount API (open_tree, mount_setattr, move_mount) and the spec names the result as a plain
/// bind. Hull also applies the bind's flags (ro, nosuid, …) itself: runc's remount would have to repeat the flags that
/// a user namespace locks, which runc 1.1 does not, and a flag set here is locked for the container anyway.
/// </summary>
public static class PreparedMounts
{
    /// <summary>The directory, under the container's, that holds the binds Hull made for it.</summary>
    public const string DirectoryName = "mounts";

    private static readonly HashSet<string> RuncOptions = new(StringComparer.Ordinal)
    {
        "bind", "rbind", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
    };

    /// <summary>Whether the spec's mount is one Hull makes.</summary>
    public static bool NeedsPreparing(OciMount m) =>
        m.Type == "bind" && m.Source is not null && (m.UidMappings is { Count: > 0 } || m.Options?.Contains("rro") == true);

    /// <summary>
    /// What to make (pure): each mount that needs it, as a <see cref="Mount"/> with containerd's uidmap=/gidmap= options
    /// on <c>&lt;directory&gt;/&lt;index&gt;</c>, and the spec that names those targets as plain binds.
    /// </summary>
    public static (OciSpec Spec, IReadOnlyList<PreparedMount> Work) Plan(OciSpec spec, string directory)
    {
        if (spec.Mounts is not { } mounts) return (spec, []);
        var work = new List<PreparedMount>();
        var rewritten = new List<OciMount>(mounts.Count);
        for (int i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            if (!NeedsPreparing(m))
            {
                rewritten.Add(m);
                continue;
            }
            var options = m.Options ?? [];
            bool recursive = !options.Contains("bind") || options.Contains("rbind");
            var hullOptions = new List<string> { recursive ? "rbind" : "bind" };
            hullOptions.AddRange(options.Where(o => !RuncOptions.Contains(o)));
            if (m.UidMappings is { Count: > 0 } uids)
            {
                if (uids.Count != 1 || m.GidMappings is not { Count: 1 } gids)
                    throw new HullException(ErrorKind.InvalidArgument,
                        $"mount at \"{m.Destination}\": an idmapped bind takes exactly one uid and one gid mapping");
                hullOptions.Add("uidmap=" + UserNamespaceOptions.Format(uids[0]));
                hullOptions.Add("gidmap=" + UserNamespaceOptions.Format(gids[0]));
            }
            string target = Path.Combine(directory, i.ToString(CultureInfo.InvariantCulture));
            bool isDirectory = FileStatus.TryGet(m.Source!) is not { } status || status.IsDirectory;
            work.Add(new PreparedMount(new Mount("bind", m.Source!, hullOptions), target, m.Destination, isDirectory));
            rewritten.Add(m with
            {
                Source = target,
                Options = options.Where(RuncOptions.Contains).DefaultIfEmpty("rbind").ToList(),
                UidMappings = null,
                GidMappings = null,
            });
        }
        return (spec with { Mounts = rewritten }, work);
    }

    /// <summary>
    /// Makes the binds <see cref="Plan"/> lists and returns the rewritten spec. On failure the binds made so far are undone
    /// and the error names the mount: InvalidArgument when its file system cannot be idmapped. Binds with the mapping of
    /// <paramref name="podUserNamespace"/> take it from its pin; others share one holder per mapping.
    /// </summary>
    public static OciSpec Make(OciSpec spec, string directory, PinnedUserNamespace? podUserNamespace = null, string mountInfoPath = MountInfo.SelfPath)
    {
        var (rewritten, work) = Plan(spec, directory);
        if (work.Count == 0) return spec;
        var made = new List<string>();
        using var idMaps = new IdMapNamespaces(podUserNamespace);
        try
        {
            // A private mount to hold the binds: attached under a shared mount (/run, /var/lib often are), a bind would
            // propagate to its peers, and those copies would keep a host path's submounts busy after the container is gone.
            Directory.CreateDirectory(directory);
            new Mount("bind", directory, ["bind", "private"]).MountAt(directory);
            made.Add(directory);
            foreach (var item in work)
            {
                if (item.IsDirectory) Directory.CreateDirectory(item.Target);
                else using (new FileStream(item.Target, FileMode.OpenOrCreate, FileAccess.Write)) { }
                try
                {
                    item.Mount.MountAt(item.Target, idMaps);
                }
                catch (SyscallException e) when (e.Call.StartsWith("mount_setattr (idmap)", StringComparison.Ordinal))
                {
                    throw new HullException(ErrorKind.InvalidArgument,
                        $"mount \"{item.Mount.Source}\" (at \"{item.Destination}\") cannot be idmapped: {FileSystemsOf(item.Mount.Source, mountInfoPath)} ({e.Message})", e);
                }
                made.Add(item.Target);
            }
        }
        catch
        {
            for (int i = made.Count - 1; i >= 0; i--) Mounts.UnmountAll(made[i], detach: true);
            throw;
        }
        return rewritten;
    }

    /// <summary>"its file system, ext4 at /, does not support idmapped mounts" (or one below it), for the error of an idmapped bind.</summary>
    internal static string FileSystemsOf(string source, string mountInfoPath)
    {
        IReadOnlyList<MountInfoEntry> entries;
        try
        {
            entries = MountInfo.Parse(File.ReadAllText(mountInfoPath));
        }
        catch (IOException)
        {
            return "its file system does not support idmapped mounts";
        }
        var own = MountInfo.Lookup(entries, source);
        string dir = source.TrimEnd('/');
        var below = entries.Where(e => e.MountPoint.StartsWith(dir + "/", StringComparison.Ordinal))
            .Select(e => $"{e.FsType} at {e.MountPoint}").Distinct().ToList();
        string ownText = own is null ? "its file system" : $"its file system, {own.FsType} at {own.MountPoint},";
        return below.Count == 0
            ? $"{ownText} does not support idmapped mounts"
            : $"{ownText} or one mounted below it ({string.Join(", ", below)}) does not support idmapped mounts";
    }
}
