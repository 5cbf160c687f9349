namespace Hull.Cdi;

/// <summary>A valid spec read from <see cref="Path"/>; <see cref="Priority"/> is the index of its directory (later directories win).</summary>
public sealed class CdiSpecFile
{
    private readonly Dictionary<string, CdiDevice> _devices;

    private CdiSpecFile(string path, int priority, CdiSpec spec)
    {
        Path = path;
        Priority = priority;
        Spec = spec;
        (Vendor, Class) = CdiNames.SplitKind(spec.Kind);
        _devices = spec.Devices.ToDictionary(d => d.Name, StringComparer.Ordinal);
    }

    public string Path { get; }
    public int Priority { get; }
    public CdiSpec Spec { get; }
    public string Vendor { get; }
    public string Class { get; }

    /// <summary>The minimum cdiVersion the spec's fields need.</summary>
    public string MinimumVersion => CdiVersions.MinimumRequired(Spec).Version;

    public IEnumerable<string> QualifiedNames => Spec.Devices.Select(d => QualifiedName(d.Name));

    public string QualifiedName(string device) => $"{Vendor}/{Class}={device}";

    public CdiDevice? Device(string name) => _devices.GetValueOrDefault(name);

    /// <summary>Reads and validates the spec at <paramref name="path"/>: the spec, or every problem found in it.</summary>
    public static (CdiSpecFile? Spec, IReadOnlyList<CdiSpecError> Errors) Load(string path, int priority = 0)
    {
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, [new CdiSpecError(path, "", $"cannot read the file: {e.Message}")]);
        }
        return Parse(data, path, priority);
    }

    /// <summary>Parses and validates spec text as if it were the file at <paramref name="path"/>.</summary>
    public static (CdiSpecFile? Spec, IReadOnlyList<CdiSpecError> Errors) Parse(ReadOnlySpan<byte> data, string path, int priority = 0)
    {
        CdiSpec spec;
        try
        {
            spec = SpecReader.Parse(data, path);
        }
        catch (CdiFormatException e)
        {
            return (null, [new CdiSpecError(path, e.Field, e.Reason)]);
        }
        var problems = SpecValidator.Validate(spec);
        if (problems.Count > 0) return (null, problems.Select(p => new CdiSpecError(path, p.Field, p.Reason)).ToArray());
        return (new CdiSpecFile(path, priority, spec), []);
    }

    /// <summary>The edits of the device called <paramref name="name"/> in this spec, resolved against the host, for one-device previews.</summary>
    public CdiInjection Preview(string name) => CdiResolver.Resolve([(this, Device(name) ?? throw new ArgumentException($"no device \"{name}\" in {Path}", nameof(name)))]);
}
