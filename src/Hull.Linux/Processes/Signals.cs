using System.Globalization;
using System.Runtime.InteropServices;

namespace Hull.Linux.Processes;

/// <summary>Signal numbers (x86-64 and arm64 share them), names as images and the CRI spell them, and kill(2).</summary>
public static partial class Signals
{
    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGKILL = 9, SIGUSR1 = 10, SIGUSR2 = 12, SIGPIPE = 13,
        SIGALRM = 14, SIGTERM = 15, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19, SIGWINCH = 28, SIGRTMIN = 34, SIGRTMAX = 64;

    private const int ESRCH = 3;

    private static readonly Dictionary<string, int> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["TRAP"] = 5, ["ABRT"] = 6, ["IOT"] = 6, ["BUS"] = 7,
        ["FPE"] = 8, ["KILL"] = 9, ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14,
        ["TERM"] = 15, ["STKFLT"] = 16, ["CHLD"] = 17, ["CLD"] = 17, ["CONT"] = 18, ["STOP"] = 19, ["TSTP"] = 20,
        ["TTIN"] = 21, ["TTOU"] = 22, ["URG"] = 23, ["XCPU"] = 24, ["XFSZ"] = 25, ["VTALRM"] = 26, ["PROF"] = 27,
        ["WINCH"] = 28, ["IO"] = 29, ["POLL"] = 29, ["PWR"] = 30, ["SYS"] = 31,
    };

    /// <summary>Parses "SIGTERM", "TERM", "15", "SIGRTMIN+3" or "RTMAX-1"; null when it is not a signal.</summary>
    public static int? TryParse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var s = text.Trim();
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int number))
            return number is >= 1 and <= SIGRTMAX ? number : null;
        if (s.StartsWith("SIG", StringComparison.OrdinalIgnoreCase)) s = s[3..];
        if (ByName.TryGetValue(s, out int named)) return named;
        foreach (var (prefix, baseNumber, sign) in new[] { ("RTMIN", SIGRTMIN, 1), ("RTMAX", SIGRTMAX, -1) })
        {
            if (!s.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) continue;
            var offsetText = s[prefix.Length..];
            if (offsetText.Length == 0) return baseNumber;
            if ((sign > 0 ? offsetText[0] != '+' : offsetText[0] != '-') ||
                !int.TryParse(offsetText[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int offset))
                return null;
            int value = baseNumber + sign * offset;
            return value is >= SIGRTMIN and <= SIGRTMAX ? value : null;
        }
        return null;
    }

    /// <summary>Like <see cref="TryParse"/>, throwing <see cref="ArgumentException"/> for an unknown signal.</summary>
    public static int Parse(string text) =>
        TryParse(text) ?? throw new ArgumentException($"\"{text}\" is not a signal name or number", nameof(text));

    /// <summary>kill(2); false when the process does not exist. Prefer <see cref="PidFd.TrySendSignal"/> where the pid may be stale.</summary>
    public static bool TrySend(int pid, int signal)
    {
        if (pid <= 0) throw new ArgumentOutOfRangeException(nameof(pid), pid, "refusing to signal a process group or every process");
        if (kill(pid, signal) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == ESRCH) return false;
        throw new SyscallException("kill", null, errno);
    }

    /// <summary>
    /// kill(-group): signals every process of a process group (a command and the children it left behind); false when
    /// the group is empty. Refuses group 1 and this process's own group.
    /// </summary>
    public static bool TrySendToGroup(int processGroup, int signal)
    {
        if (processGroup <= 1 || processGroup == getpgrp())
            throw new ArgumentOutOfRangeException(nameof(processGroup), processGroup, "refusing to signal init's or our own process group");
        if (kill(-processGroup, signal) == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == ESRCH) return false;
        throw new SyscallException("kill", null, errno);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    private static partial int getpgrp();
}
