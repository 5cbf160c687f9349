using System.Globalization;

namespace Hull.Linux.Processes;

/// <summary>
/// What /proc/&lt;pid&gt;/stat says about a process. <see cref="StartTime"/> (clock ticks since boot) together with the pid
/// identifies a process across pid reuse, which is how Hull recognises a container process after a restart.
/// </summary>
public sealed record ProcessInfo(int Pid, string Command, char State, int ParentPid, int ProcessGroup, int Session, ulong StartTime)
{
    /// <summary>Exited but not yet reaped by its parent.</summary>
    public bool IsZombie => State is 'Z' or 'X' or 'x';

    /// <summary>Null when the process does not exist.</summary>
    public static ProcessInfo? TryRead(int pid)
    {
        if (pid <= 0) return null;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        return Parse(text);
    }

    /// <summary>Parses one /proc/&lt;pid&gt;/stat line; the command may itself contain spaces and parentheses.</summary>
    public static ProcessInfo Parse(string stat)
    {
        int open = stat.IndexOf('(');
        int close = stat.LastIndexOf(')');
        if (open < 0 || close < open) throw new FormatException($"malformed /proc stat line \"{stat}\"");
        int pid = int.Parse(stat.AsSpan(0, open).Trim(), CultureInfo.InvariantCulture);
        string command = stat[(open + 1)..close];
        // Fields after the command: 3 state, 4 ppid, 5 pgrp, 6 session, … 22 starttime.
        var rest = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length < 20) throw new FormatException($"short /proc stat line \"{stat}\"");
        return new ProcessInfo(pid, command, rest[0][0],
            int.Parse(rest[1], CultureInfo.InvariantCulture),
            int.Parse(rest[2], CultureInfo.InvariantCulture),
            int.Parse(rest[3], CultureInfo.InvariantCulture),
            ulong.Parse(rest[19], CultureInfo.InvariantCulture));
    }

    /// <summary>True when the process exists and has not exited; with <paramref name="startTime"/>, only if it is the same process.</summary>
    public static bool IsAlive(int pid, ulong? startTime = null) =>
        TryRead(pid) is { IsZombie: false } info && (startTime is null || info.StartTime == startTime);
}
