using System.Globalization;
using System.Text;
using Hull.Core;

namespace Hull.Runtime.Spec;

/// <summary>
/// oom_score_adj limits. Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE; runc writes the spec's
/// process.oomScoreAdj before dropping privileges, so when hulld itself may not lower it, asking for less than
/// hulld's own value makes runc fail (as "can't get final child's PID from pipe: EOF"). containerd's
/// restrict_oom_score_adj clamps the request to the daemon's own value; so does <see cref="Restrict"/>.
/// </summary>
public static class OomScoreAdjPolicy
{
    public const string SelfPath = "/proc/self/oom_score_adj";
    public const int Min = -1000, Max = 1000;

    public static int Current(string path = SelfPath) =>
        int.Parse(File.ReadAllText(path).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    /// <summary>max(requested, current): never ask for a lower score than this process has.</summary>
    public static int Restrict(int requested, int current) => Math.Max(requested, current);

    /// <summary>
    /// Whether this process may lower its oom_score_adj: writes current-1 to /proc/self/oom_score_adj and puts the
    /// old value back. Raising it again is always allowed, so the probe leaves nothing changed. Call it once at
    /// start-up (it briefly changes this process's score), and set <see cref="SpecBuilderOptions.RestrictOomScoreAdj"/> when it is false.
    /// </summary>
    public static bool CanLower(string path = SelfPath)
    {
        int current = Current(path);
        if (current <= Min) return true; // nothing lower exists to be refused
        try
        {
            Write(path, current - 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        try
        {
            Write(path, current);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.Internal, $"lowered {path} to {current - 1} to probe, but could not restore {current}: {e.Message}", e);
        }
        return true;
    }

    private static void Write(string path, int value)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
        stream.Write(Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture)));
        stream.Flush();
    }
}
