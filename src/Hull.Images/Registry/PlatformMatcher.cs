using System.Runtime.InteropServices;
using Hull.Images.Oci;

namespace Hull.Images.Registry;

/// <summary>
/// Picks manifests for a platform as containerd's <c>platforms.Only</c> does (what <c>platforms.Default()</c>
/// uses for the node): an ordered list of compatible platforms, the exact one first. arm/v7 also runs
/// arm/v6 and arm/v5; arm64 also runs arm/v8 down to arm/v5; amd64/v3 also runs v2, v1 and 386.
/// </summary>
public sealed class PlatformMatcher
{
    private static readonly Lazy<PlatformMatcher> NodeDefault = new(() => Only(NodePlatform()));
    private readonly Platform[] _vector;

    private PlatformMatcher(Platform[] vector) => _vector = vector;

    /// <summary>The matcher for the node Hull runs on.</summary>
    public static PlatformMatcher Default => NodeDefault.Value;

    /// <summary>The compatible platforms in order of preference.</summary>
    public IReadOnlyList<Platform> Preference => _vector;

    public static PlatformMatcher Only(Platform platform) => new(Vector(Normalize(platform)).ToArray());

    /// <summary>Matches only <paramref name="platform"/> itself (after normalisation).</summary>
    public static PlatformMatcher Exact(Platform platform) => new([Normalize(platform)]);

    public bool Matches(Platform platform) => Rank(platform) >= 0;

    /// <summary>0 for the most preferred platform, higher for less; -1 when it does not match.</summary>
    public int Rank(Platform platform)
    {
        Platform p = Normalize(platform);
        for (int i = 0; i < _vector.Length; i++)
        {
            Platform want = _vector[i];
            if (want.Os == p.Os && want.Architecture == p.Architecture && (want.Variant ?? "") == (p.Variant ?? "") && FeaturesSubset(p, want))
                return i;
        }
        return -1;
    }

    /// <summary>
    /// The entries of an index this node can run, best first (stable among equals). Entries without a
    /// platform are kept, last, as containerd keeps them: their image config says what they are.
    /// </summary>
    public IReadOnlyList<Descriptor> Candidates(IEnumerable<Descriptor> manifests) =>
        manifests
            .Select((d, i) => (d, i, rank: d.Platform is null ? int.MaxValue : Rank(d.Platform)))
            .Where(x => x.rank >= 0)
            .OrderBy(x => x.rank).ThenBy(x => x.i)
            .Select(x => x.d)
            .ToArray();

    /// <summary>The best entry with a matching platform, or null when the index has none for this node.</summary>
    public Descriptor? Select(IEnumerable<Descriptor> manifests) =>
        Candidates(manifests).FirstOrDefault(d => d.Platform is not null);

    /// <summary>containerd's Normalize: canonical OS and architecture names, default variants dropped or filled in.</summary>
    public static Platform Normalize(Platform platform)
    {
        string os = string.IsNullOrEmpty(platform.Os) ? "linux" : platform.Os.ToLowerInvariant();
        if (os == "macos") os = "darwin";
        string arch = platform.Architecture.ToLowerInvariant();
        string variant = (platform.Variant ?? "").ToLowerInvariant();
        switch (arch)
        {
            case "i386":
                arch = "386";
                variant = "";
                break;
            case "x86_64" or "x86-64" or "amd64":
                arch = "amd64";
                if (variant == "v1") variant = "";
                break;
            case "aarch64" or "arm64":
                arch = "arm64";
                if (variant is "8" or "v8") variant = "";
                break;
            case "armhf":
                arch = "arm";
                variant = "v7";
                break;
            case "armel":
                arch = "arm";
                variant = "v6";
                break;
            case "arm":
                variant = variant switch
                {
                    "" or "7" => "v7",
                    "5" or "6" or "8" => "v" + variant,
                    _ => variant,
                };
                break;
        }

        string[]? features = platform.OsFeatures is { Count: > 0 } f ? f.Distinct().Order(StringComparer.Ordinal).ToArray() : null;
        return new Platform(os, arch, variant.Length == 0 ? null : variant) { OsVersion = platform.OsVersion, OsFeatures = features };
    }

    /// <summary>The node's platform: linux, the process architecture, and the CPU variant containerd would detect.</summary>
    public static Platform NodePlatform()
    {
        (string arch, string? variant) = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => ("amd64", Amd64Level()),
            Architecture.Arm64 => ("arm64", "v8"),
            Architecture.Arm => ("arm", "v7"),
            Architecture.X86 => ("386", null),
            Architecture.S390x => ("s390x", null),
            Architecture.Ppc64le => ("ppc64le", null),
            Architecture.RiscV64 => ("riscv64", null),
            Architecture.LoongArch64 => ("loong64", null),
            var other => (other.ToString().ToLowerInvariant(), (string?)null),
        };
        return new Platform("linux", arch, variant);
    }

    // containerd/platforms platformVector.
    private static IEnumerable<Platform> Vector(Platform p)
    {
        yield return p;
        switch (p.Architecture)
        {
            case "amd64":
                if (TryVersion(p.Variant, out int level) && level > 1)
                {
                    for (level--; level >= 1; level--) yield return p with { Variant = level == 1 ? null : "v" + level };
                }
                yield return p with { Architecture = "386", Variant = null };
                break;
            case "arm":
                if (TryVersion(p.Variant, out int armVersion) && armVersion > 5)
                {
                    for (armVersion--; armVersion >= 5; armVersion--) yield return p with { Variant = "v" + armVersion };
                }
                break;
            case "arm64":
                foreach (Platform q in Arm64Vector(p)) yield return q;
                break;
        }
    }

    private static IEnumerable<Platform> Arm64Vector(Platform p)
    {
        string variant = string.IsNullOrEmpty(p.Variant) ? "v8" : p.Variant;
        string[] majorMinor = variant.TrimStart('v').Split('.', 2);
        if (int.TryParse(majorMinor[0], out int major) && major >= 8)
        {
            int minor = majorMinor.Length == 2 && int.TryParse(majorMinor[1], out int m) ? m : 0;
            if (major == 9)
            {
                for (int i = minor - 1; i >= 0; i--) yield return p with { Variant = i == 0 ? "v9" : $"v9.{i}" };
                // v9.x is compatible with v8.(x+5).
                minor += 5;
                major = 8;
                yield return p with { Variant = $"v8.{minor}" };
            }
            for (int i = minor - 1; i >= 0; i--) yield return p with { Variant = i == 0 ? null : $"v{major}.{i}" };
        }

        string armVariant = variant.StartsWith("v8.", StringComparison.Ordinal) || variant.StartsWith("v9.", StringComparison.Ordinal) ? "v8" : variant;
        foreach (Platform q in Vector(p with { Architecture = "arm", Variant = armVariant })) yield return q;
    }

    private static bool TryVersion(string? variant, out int version) =>
        int.TryParse((variant ?? "").TrimStart('v'), out version);

    // The index entry's features must all be ones the node has (containerd's matcher).
    private static bool FeaturesSubset(Platform candidate, Platform node) =>
        candidate.OsFeatures is not { Count: > 0 } features || (node.OsFeatures is { } have && features.All(have.Contains));

    // x86-64 micro-architecture level from /proc/cpuinfo flags, as containerd/platforms detects it.
    private static string? Amd64Level()
    {
        try
        {
            string? flagsLine = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
            if (flagsLine is null) return null;
            var flags = flagsLine[(flagsLine.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            int level = 1;
            if (new[] { "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3" }.All(flags.Contains)) level = 2;
            if (level == 2 && new[] { "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave" }.All(flags.Contains)) level = 3;
            if (level == 3 && new[] { "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl" }.All(flags.Contains)) level = 4;
            return level == 1 ? null : "v" + level;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
