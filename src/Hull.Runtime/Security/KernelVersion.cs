using System.Globalization;

namespace Hull.Runtime.Security;

/// <summary>The running kernel's release as major.minor (what feature checks compare: "ptrace is safe from 4.8").</summary>
public readonly record struct KernelVersion(int Major, int Minor) : IComparable<KernelVersion>
{
    public int CompareTo(KernelVersion other) =>
        Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;
    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;
    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;

    public override string ToString() => $"{Major}.{Minor}";

    /// <summary>Parses a release string such as "6.18.44-fc-v657" or "5.15.0-91-generic".</summary>
    public static KernelVersion Parse(string release)
    {
        if (TryParse(release, out var version)) return version;
        throw new FormatException($"kernel release \"{release}\" is not MAJOR.MINOR[...]");
    }

    public static bool TryParse(string? release, out KernelVersion version)
    {
        version = default;
        if (string.IsNullOrWhiteSpace(release)) return false;
        var parts = release.Trim().Split('.', 3);
        if (parts.Length < 2) return false;
        string minorDigits = new(parts[1].TakeWhile(char.IsAsciiDigit).ToArray());
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major) ||
            !int.TryParse(minorDigits, NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
            return false;
        version = new KernelVersion(major, minor);
        return true;
    }

    /// <summary>The running kernel (/proc/sys/kernel/osrelease).</summary>
    public static KernelVersion Current()
    {
        string release = File.ReadAllText("/proc/sys/kernel/osrelease");
        return Parse(release);
    }
}
