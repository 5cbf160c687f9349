namespace Hull.Cdi;

/// <summary>The field that makes a spec need a version, and that version.</summary>
public sealed record CdiVersionRequirement(string Version, string Field, string Feature);

/// <summary>
/// CDI spec versions (specs-go/version.go): the released ones, which of them a spec may declare (0.3.0 and later), and the
/// minimum version the fields a spec uses require. A spec whose cdiVersion is below that minimum is invalid.
/// </summary>
public static class CdiVersions
{
    public const string Current = "1.1.0";
    public const string Earliest = "0.3.0";

    /// <summary>Every released version, newest first (as the reference lists them).</summary>
    public static IReadOnlyList<string> Known { get; } = ["1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0", "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"];

    /// <summary>"v0.5.0" and "0.5.0" are the same version.</summary>
    public static string Normalize(string version) => version.StartsWith('v') ? version[1..] : version;

    public static bool IsKnown(string version) => Known.Contains(Normalize(version));

    /// <summary>Negative when <paramref name="a"/> is older than <paramref name="b"/>; both must be known.</summary>
    public static int Compare(string a, string b) => IndexOf(b).CompareTo(IndexOf(a));

    private static int IndexOf(string version)
    {
        string normalized = Normalize(version);
        for (int i = 0; i < Known.Count; i++)
            if (Known[i] == normalized) return i;
        throw new ArgumentException($"unknown CDI version \"{version}\"", nameof(version));
    }

    /// <summary>The newest version a field of <paramref name="spec"/> needs (what the reference's MinimumRequiredVersion computes), with the first field that needs it; 0.3.0 when nothing newer is used.</summary>
    public static CdiVersionRequirement MinimumRequired(CdiSpec spec) =>
        RequiresV110(spec) ?? RequiresV070(spec) ?? RequiresV060(spec) ?? RequiresV050(spec) ?? RequiresV040(spec)
        ?? new CdiVersionRequirement(Earliest, "", "");

    /// <summary>The spec-level edits and each device's, with their field paths.</summary>
    private static IEnumerable<(string Path, CdiContainerEdits Edits)> AllEdits(CdiSpec spec)
    {
        for (int i = 0; i < spec.Devices.Count; i++) yield return ($"devices[{i}].containerEdits", spec.Devices[i].ContainerEdits);
        yield return ("containerEdits", spec.ContainerEdits);
    }

    private static CdiVersionRequirement? RequiresV110(CdiSpec spec)
    {
        foreach (var (path, edits) in AllEdits(spec))
        {
            if (edits.IntelRdt is { Schemata: not null }) return new("1.1.0", $"{path}.intelRdt.schemata", "intelRdt.schemata");
            if (edits.IntelRdt is { EnableMonitoring: true }) return new("1.1.0", $"{path}.intelRdt.enableMonitoring", "intelRdt.enableMonitoring");
            if (edits.NetDevices.Count > 0) return new("1.1.0", $"{path}.netDevices", "netDevices");
        }
        return null;
    }

    // 0.8.0 and 1.0.0 changed only the Go API, no field.

    private static CdiVersionRequirement? RequiresV070(CdiSpec spec)
    {
        foreach (var (path, edits) in AllEdits(spec))
        {
            if (edits.IntelRdt is not null) return new("0.7.0", $"{path}.intelRdt", "intelRdt");
            if (edits.AdditionalGids.Count > 0) return new("0.7.0", $"{path}.additionalGids", "additionalGids");
        }
        return null;
    }

    private static CdiVersionRequirement? RequiresV060(CdiSpec spec)
    {
        if (spec.Annotations is { Count: > 0 }) return new("0.6.0", "annotations", "annotations");
        for (int i = 0; i < spec.Devices.Count; i++)
            if (spec.Devices[i].Annotations is { Count: > 0 }) return new("0.6.0", $"devices[{i}].annotations", "annotations");
        int slash = spec.Kind.IndexOf('/');
        if (slash >= 0 && spec.Kind.IndexOf('.', slash + 1) >= 0) return new("0.6.0", "kind", "a dot in the class name");
        return null;
    }

    private static CdiVersionRequirement? RequiresV050(CdiSpec spec)
    {
        for (int i = 0; i < spec.Devices.Count; i++)
            if (spec.Devices[i].Name is [>= '0' and <= '9', ..]) return new("0.5.0", $"devices[{i}].name", "a device name starting with a digit");
        foreach (var (path, edits) in AllEdits(spec))
            for (int i = 0; i < edits.DeviceNodes.Count; i++)
                if (edits.DeviceNodes[i].HostPath.Length > 0) return new("0.5.0", $"{path}.deviceNodes[{i}].hostPath", "deviceNodes[].hostPath");
        return null;
    }

    private static CdiVersionRequirement? RequiresV040(CdiSpec spec)
    {
        foreach (var (path, edits) in AllEdits(spec))
            for (int i = 0; i < edits.Mounts.Count; i++)
                if (edits.Mounts[i].Type.Length > 0) return new("0.4.0", $"{path}.mounts[{i}].type", "mounts[].type");
        return null;
    }
}
