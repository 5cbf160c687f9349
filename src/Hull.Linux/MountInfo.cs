namespace Hull.Linux;

/// <summary>One line of /proc/PID/mountinfo (proc(5)).</summary>
/// <param name="Root">The path inside its file system that the mount shows (field 4: "/" unless it is a bind of a subtree).</param>
/// <param name="SuperOptions">The file system's own options (the last field: for a cgroup v1 mount, its controllers).</param>
public sealed record MountInfoEntry(string MountPoint, string FsType, string Source, IReadOnlyList<string> OptionalFields,
    string Root = "/", string SuperOptions = "")
{
    public bool IsShared => OptionalFields.Any(f => f.StartsWith("shared:", StringComparison.Ordinal));
    public bool IsSlave => OptionalFields.Any(f => f.StartsWith("master:", StringComparison.Ordinal));
}

/// <summary>The mount table of this process's mount namespace (/proc/self/mountinfo): the one parser of it.</summary>
public static class MountInfo
{
    public const string SelfPath = "/proc/self/mountinfo";

    /// <summary>Mount points at or below <paramref name="path"/> in this process's mount namespace, deepest last as listed.</summary>
    public static IReadOnlyList<string> PointsBelow(string path)
    {
        string dir = path.TrimEnd('/');
        return Parse(File.ReadAllText(SelfPath)).Select(e => e.MountPoint)
            .Where(mp => mp == dir || mp.StartsWith(dir + "/", StringComparison.Ordinal)).ToList();
    }

    public static IReadOnlyList<MountInfoEntry> Parse(string text)
    {
        var entries = new List<MountInfoEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split(' ');
            int dash = Array.IndexOf(f, "-");
            if (f.Length < 7 || dash < 6 || dash + 2 >= f.Length) continue;
            entries.Add(new MountInfoEntry(Unescape(f[4]), f[dash + 1], Unescape(f[dash + 2]), f[6..dash], Unescape(f[3]),
                dash + 3 < f.Length ? f[dash + 3] : ""));
        }
        return entries;
    }

    /// <summary>The mount a path lives on: the longest mount point containing it, the last (topmost) of equals.</summary>
    public static MountInfoEntry? Lookup(IReadOnlyList<MountInfoEntry> entries, string path)
    {
        MountInfoEntry? best = null;
        foreach (var e in entries)
        {
            bool contains = e.MountPoint == "/" || path == e.MountPoint || path.StartsWith(e.MountPoint + "/", StringComparison.Ordinal);
            if (contains && (best is null || e.MountPoint.Length >= best.MountPoint.Length)) best = e;
        }
        return best;
    }

    // mountinfo escapes space, tab, newline and backslash as \ooo.
    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
}
