using System.Globalization;
using Hull.Core;

namespace Hull.Runtime.Spec;

/// <summary>The container process's identity: uid, primary gid, supplementary gids and (when the image knows) home directory.</summary>
public sealed record ResolvedUser(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, string? Home);

/// <summary>One /etc/passwd line.</summary>
public sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home);

/// <summary>One /etc/group line.</summary>
public sealed record GroupEntry(string Name, uint Gid, IReadOnlyList<string> Members);

/// <summary>
/// Who the container runs as, decided the way containerd's CRI plugin decides it (util.GenerateUserString,
/// oci.WithUser, oci.WithAdditionalGIDs, WithSupplementalGroups) from the security context, the image config and the
/// image's own /etc/passwd and /etc/group.
/// </summary>
public static class UserResolver
{
    // runc requires IDs to fit in an int32, and containerd follows it.
    private const long MaxId = int.MaxValue;

    public static async Task<ResolvedUser> ResolveAsync(
        string rootfs, string imageName, ContainerSecurity security, ImageConfig image, CancellationToken cancellationToken)
    {
        string? passwdText = await RootfsPath.ReadTextAsync(rootfs, "/etc/passwd", cancellationToken).ConfigureAwait(false);
        string? groupText = await RootfsPath.ReadTextAsync(rootfs, "/etc/group", cancellationToken).ConfigureAwait(false);
        IReadOnlyList<PasswdEntry>? passwdEntries = passwdText is null ? null : ParsePasswd(passwdText);
        IReadOnlyList<GroupEntry>? groupEntries = groupText is null ? null : ParseGroup(groupText);

        string userString = UserString(security) ?? image.User ?? "";

        uint uid = 0, gid = 0;
        PasswdEntry? entry = null;
        if (userString.Length > 0)
        {
            string[] parts = userString.Split(':');
            if (parts.Length > 2)
                throw new HullException(ErrorKind.InvalidArgument, $"invalid user \"{userString}\" for image \"{imageName}\": expected user, uid, user:group or uid:gid");
            if (parts.Length == 1)
            {
                if (TryId(parts[0], out uid))
                {
                    // A numeric uid needs no passwd entry: then the primary group is 0.
                    entry = passwdEntries?.FirstOrDefault(e => e.Uid == uid);
                    gid = entry?.Gid ?? 0;
                }
                else
                {
                    entry = FindUser(passwdEntries, parts[0], imageName);
                    (uid, gid) = (entry.Uid, entry.Gid);
                }
            }
            else
            {
                if (TryId(parts[0], out uid)) entry = null;
                else { entry = FindUser(passwdEntries, parts[0], imageName); uid = entry.Uid; }
                if (!TryId(parts[1], out gid))
                {
                    var group = groupEntries?.FirstOrDefault(g => g.Name == parts[1]) ?? throw new HullException(ErrorKind.InvalidArgument,
                        groupEntries is null
                            ? $"group \"{parts[1]}\" not found in image \"{imageName}\": the image has no /etc/group"
                            : $"group \"{parts[1]}\" not found in /etc/group of image \"{imageName}\"");
                    gid = group.Gid;
                }
            }
        }

        entry ??= passwdEntries?.FirstOrDefault(e => e.Uid == uid);

        var additional = new SortedSet<uint>();
        if (security.SupplementalGroupsPolicy == SupplementalGroupsPolicy.Merge)
            foreach (var g in ImageGroups(GroupUser(security, image), passwdEntries, groupEntries)) additional.Add(g);
        foreach (var g in security.SupplementalGroups)
        {
            if (g < 0 || g > MaxId)
                throw new HullException(ErrorKind.InvalidArgument, $"supplemental group {g} is out of range (0 to {MaxId})");
            additional.Add((uint)g);
        }

        string? home = string.IsNullOrEmpty(entry?.Home) ? null : entry.Home;
        return new ResolvedUser(uid, gid, additional.ToArray(), home);
    }

    /// <summary>
    /// CRI's user for the process, as util.GenerateUserString builds it: run_as_username, else run_as_user, with
    /// ":gid" when run_as_group is set; null when the security context names no user (the image decides).
    /// </summary>
    public static string? UserString(ContainerSecurity security)
    {
        string? user = null;
        if (security.RunAsUser is long u)
        {
            CheckId(u, "run_as_user");
            user = u.ToString(CultureInfo.InvariantCulture);
        }
        if (!string.IsNullOrEmpty(security.RunAsUsername)) user = security.RunAsUsername;
        if (security.RunAsGroup is long g)
        {
            CheckId(g, "run_as_group");
            if (user is null)
                throw new HullException(ErrorKind.InvalidArgument, $"run_as_group {g} is set without run_as_user or run_as_username");
            return $"{user}:{g.ToString(CultureInfo.InvariantCulture)}";
        }
        return user;
    }

    // The user whose /etc/group memberships count: the CRI user, else the image's user part, else root (containerd's "0").
    private static string GroupUser(ContainerSecurity security, ImageConfig image)
    {
        if (!string.IsNullOrEmpty(security.RunAsUsername)) return security.RunAsUsername;
        if (security.RunAsUser is long u) return u.ToString(CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(image.User)) return image.User.Split(':')[0];
        return "0";
    }

    // oci.WithAdditionalGIDs: the groups listing the user as a member, except a group named like the user.
    private static IEnumerable<uint> ImageGroups(string user, IReadOnlyList<PasswdEntry>? passwd, IReadOnlyList<GroupEntry>? groups)
    {
        if (groups is null) return [];
        string? name = user;
        if (TryId(user, out uint uid))
            name = passwd?.FirstOrDefault(e => e.Uid == uid)?.Name;
        if (name is null) return [];
        return groups.Where(g => g.Name != name && g.Members.Contains(name)).Select(g => g.Gid);
    }

    private static PasswdEntry FindUser(IReadOnlyList<PasswdEntry>? passwd, string name, string imageName)
    {
        if (passwd is null)
            throw new HullException(ErrorKind.InvalidArgument, $"user \"{name}\" not found in image \"{imageName}\": the image has no /etc/passwd");
        return passwd.FirstOrDefault(e => e.Name == name)
            ?? throw new HullException(ErrorKind.InvalidArgument, $"user \"{name}\" not found in /etc/passwd of image \"{imageName}\"");
    }

    private static bool TryId(string text, out uint id)
    {
        id = 0;
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value > MaxId) return false;
        id = (uint)value;
        return true;
    }

    private static void CheckId(long value, string field)
    {
        if (value < 0 || value > MaxId)
            throw new HullException(ErrorKind.InvalidArgument, $"{field} {value} is out of range (0 to {MaxId})");
    }

    /// <summary>Parses /etc/passwd; malformed lines are skipped, as libc and runc's user package do.</summary>
    public static IReadOnlyList<PasswdEntry> ParsePasswd(string text)
    {
        var entries = new List<PasswdEntry>();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string[] f = line.Split(':');
            if (f.Length < 4 || !TryId(f[2], out uint uid)) continue;
            TryId(f[3], out uint gid);
            entries.Add(new PasswdEntry(f[0], uid, gid, f.Length > 5 ? f[5] : ""));
        }
        return entries;
    }

    /// <summary>Parses /etc/group; malformed lines are skipped.</summary>
    public static IReadOnlyList<GroupEntry> ParseGroup(string text)
    {
        var entries = new List<GroupEntry>();
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string[] f = line.Split(':');
            if (f.Length < 3 || !TryId(f[2], out uint gid)) continue;
            string[] members = f.Length > 3 ? f[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
            entries.Add(new GroupEntry(f[0], gid, members));
        }
        return entries;
    }
}
