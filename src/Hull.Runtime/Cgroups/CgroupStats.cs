using System.Globalization;
using Hull.Core;

namespace Hull.Runtime.Cgroups;

/// <summary>
/// Usage of one cgroup at <see cref="Timestamp"/>, in the units the CRI reports. <see cref="MemoryWorkingSetBytes"/>
/// is usage minus inactive file pages, as the kubelet (cAdvisor) computes it for eviction.
/// </summary>
public sealed record CgroupStats(
    DateTimeOffset Timestamp,
    ulong CpuUsageNanoseconds,
    ulong MemoryUsageBytes,
    ulong MemoryWorkingSetBytes,
    ulong MemoryRssBytes,
    ulong? MemoryLimitBytes,
    ulong PageFaults,
    ulong MajorPageFaults,
    ulong OomKills,
    ulong? Pids)
{
    /// <summary>Nothing used yet (a container with no cgroup so far), as of now.</summary>
    public static CgroupStats None() => new(DateTimeOffset.UtcNow, 0, 0, 0, 0, null, 0, 0, 0, null);
}

/// <summary>Reads <see cref="CgroupStats"/> from cgroup v1 controller files or cgroup v2 files.</summary>
public static class CgroupStatsReader
{
    /// <summary>v1 reports "no limit" as a huge page-aligned number; anything this large is unlimited.</summary>
    private const ulong UnlimitedThreshold = 1UL << 62;

    /// <summary>Throws <see cref="HullException"/> (NotFound) when the cgroup does not exist (any more).</summary>
    public static CgroupStats Read(CgroupPaths paths)
    {
        if (!paths.Directories.Any(Directory.Exists))
            throw new HullException(ErrorKind.NotFound, $"cgroup {string.Join(", ", paths.Directories.Take(1))} does not exist");
        var timestamp = DateTimeOffset.UtcNow;
        string? cpuacct = paths.Controller("cpuacct");
        string? memory = paths.Controller("memory");
        string? pids = paths.Controller("pids");

        ulong cpu;
        if (cpuacct is not null) cpu = ReadUlong(Path.Combine(cpuacct, "cpuacct.usage")) ?? 0;
        else if (paths.Unified is { } u) cpu = (ReadKeyed(Path.Combine(u, "cpu.stat")).GetValueOrDefault("usage_usec")) * 1000;
        else throw new HullException(ErrorKind.FailedPrecondition,
            $"cgroup {string.Join(", ", paths.Directories.Take(1))} has no CPU accounting (no cpuacct controller, no cgroup2 tree)");

        ulong usage, inactiveFile, rss, faults, majorFaults, oomKills;
        ulong? limit;
        if (memory is not null)
        {
            usage = ReadUlong(Path.Combine(memory, "memory.usage_in_bytes")) ?? 0;
            var stat = ReadKeyed(Path.Combine(memory, "memory.stat"));
            inactiveFile = stat.GetValueOrDefault("total_inactive_file");
            rss = stat.GetValueOrDefault("total_rss");
            faults = stat.GetValueOrDefault("total_pgfault");
            majorFaults = stat.GetValueOrDefault("total_pgmajfault");
            limit = ReadUlong(Path.Combine(memory, "memory.limit_in_bytes")) is { } l && l < UnlimitedThreshold ? l : null;
            oomKills = ReadKeyed(Path.Combine(memory, "memory.oom_control")).GetValueOrDefault("oom_kill");
        }
        else if (paths.Unified is { } u && File.Exists(Path.Combine(u, "memory.current")))
        {
            usage = ReadUlong(Path.Combine(u, "memory.current")) ?? 0;
            var stat = ReadKeyed(Path.Combine(u, "memory.stat"));
            inactiveFile = stat.GetValueOrDefault("inactive_file");
            rss = stat.GetValueOrDefault("anon");
            faults = stat.GetValueOrDefault("pgfault");
            majorFaults = stat.GetValueOrDefault("pgmajfault");
            limit = ReadUlong(Path.Combine(u, "memory.max"));
            oomKills = ReadKeyed(Path.Combine(u, "memory.events")).GetValueOrDefault("oom_kill");
        }
        else
        {
            usage = inactiveFile = rss = faults = majorFaults = oomKills = 0;
            limit = null;
        }

        ulong? pidCount = pids is not null ? ReadUlong(Path.Combine(pids, "pids.current"))
            : paths.Unified is { } pu ? ReadUlong(Path.Combine(pu, "pids.current")) : null;

        ulong workingSet = usage > inactiveFile ? usage - inactiveFile : 0;
        return new CgroupStats(timestamp, cpu, usage, workingSet, rss, limit, faults, majorFaults, oomKills, pidCount);
    }

    /// <summary>How many processes the OOM killer has killed in this cgroup (v1 memory.oom_control, v2 memory.events); null when unknown.</summary>
    public static ulong? ReadOomKills(CgroupPaths paths)
    {
        if (paths.Controller("memory") is { } memory)
        {
            var file = Path.Combine(memory, "memory.oom_control");
            return File.Exists(file) ? ReadKeyed(file).GetValueOrDefault("oom_kill") : null;
        }
        if (paths.Unified is { } u && File.Exists(Path.Combine(u, "memory.events")))
            return ReadKeyed(Path.Combine(u, "memory.events")).GetValueOrDefault("oom_kill");
        return null;
    }

    /// <summary>A single-number file; "max" (v2's no-limit) and a missing file read as null.</summary>
    internal static ulong? ReadUlong(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        if (text == "max") return null;
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    /// <summary>A "key value" per line file (memory.stat, cpu.stat, memory.events, memory.oom_control); missing reads as empty.</summary>
    internal static Dictionary<string, ulong> ReadKeyed(string path)
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return values;
        }
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.IndexOf(' ');
            if (space <= 0) continue;
            if (ulong.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                values[line[..space]] = value;
        }
        return values;
    }
}
