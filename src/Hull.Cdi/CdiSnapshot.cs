namespace Hull.Cdi;

/// <summary>
/// The registry's view of the spec directories at one moment: the valid specs, the devices they define, and every problem
/// found (invalid files, conflicting devices). Immutable, so a container being created resolves against one consistent
/// view while a refresh builds the next.
/// </summary>
public sealed class CdiSnapshot
{
    private readonly Dictionary<string, (CdiSpecFile Spec, CdiDevice Device)> _devices;
    private readonly Dictionary<string, IReadOnlyList<string>> _conflicts;

    private CdiSnapshot(long generation, IReadOnlyList<string> directories, IReadOnlyList<CdiSpecFile> specs,
        Dictionary<string, (CdiSpecFile Spec, CdiDevice Device)> devices, Dictionary<string, IReadOnlyList<string>> conflicts, IReadOnlyList<CdiSpecError> errors)
    {
        Generation = generation;
        SpecDirectories = directories;
        Specs = specs;
        _devices = devices;
        _conflicts = conflicts;
        Errors = errors;
        Devices = devices.Select(d => new CdiInjectedDevice(d.Key, d.Value.Spec.Path)).OrderBy(d => d.Name, StringComparer.Ordinal).ToArray();
    }

    /// <summary>Counts refreshes; a new snapshot has a higher one.</summary>
    public long Generation { get; }
    public IReadOnlyList<string> SpecDirectories { get; }
    /// <summary>The valid specs, in the order they were read (directory order, then file name).</summary>
    public IReadOnlyList<CdiSpecFile> Specs { get; }
    /// <summary>Every device that can be injected, by name, with the spec file that defines it.</summary>
    public IReadOnlyList<CdiInjectedDevice> Devices { get; }
    /// <summary>Files that could not be read or are invalid, and devices that conflict.</summary>
    public IReadOnlyList<CdiSpecError> Errors { get; }

    /// <summary>
    /// Reads every *.json and *.yaml file directly in <paramref name="directories"/> (a missing directory is skipped). A
    /// device defined in two directories is taken from the later one; defined twice in one directory it is a conflict and
    /// neither definition is used. Unlike the reference, a same-directory conflict does not hide the device when a later
    /// directory defines it too: the later definition wins, as the spec's precedence rule says.
    /// </summary>
    public static CdiSnapshot Load(IReadOnlyList<string> directories, long generation = 0)
    {
        var specs = new List<CdiSpecFile>();
        var errors = new List<CdiSpecError>();
        var devices = new Dictionary<string, (CdiSpecFile Spec, CdiDevice Device)>(StringComparer.Ordinal);
        var sameLevel = new Dictionary<string, List<CdiSpecFile>>(StringComparer.Ordinal);

        for (int priority = 0; priority < directories.Count; priority++)
        {
            foreach (var path in SpecFiles(directories[priority], errors))
            {
                var (spec, problems) = CdiSpecFile.Load(path, priority);
                errors.AddRange(problems);
                if (spec is null) continue;
                specs.Add(spec);
                foreach (var device in spec.Spec.Devices)
                {
                    string name = spec.QualifiedName(device.Name);
                    if (devices.TryGetValue(name, out var existing) && existing.Spec.Priority == priority)
                    {
                        if (!sameLevel.TryGetValue(name, out var files)) sameLevel[name] = files = [existing.Spec];
                        files.Add(spec);
                        continue;
                    }
                    devices[name] = (spec, device);
                    sameLevel.Remove(name);
                }
            }
        }

        var conflicts = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (name, files) in sameLevel)
        {
            devices.Remove(name);
            var paths = files.Select(f => f.Path).ToArray();
            conflicts[name] = paths;
            foreach (var file in files)
            {
                int index = 0;
                while (file.QualifiedName(file.Spec.Devices[index].Name) != name) index++;
                errors.Add(new CdiSpecError(file.Path, $"devices[{index}].name",
                    $"conflicting device \"{name}\": also defined in {string.Join(", ", paths.Where(p => p != file.Path).Select(p => $"\"{p}\""))}; neither definition is used"));
            }
        }
        return new CdiSnapshot(generation, directories, specs, devices, conflicts, errors);
    }

    // os.ReadDir order (by name); only regular entries with the spec extensions.
    private static IEnumerable<string> SpecFiles(string directory, List<CdiSpecError> errors)
    {
        string[] files;
        try
        {
            if (!Directory.Exists(directory)) return [];
            files = Directory.GetFiles(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add(new CdiSpecError(directory, "", $"cannot list the spec directory: {e.Message}"));
            return [];
        }
        return files.Where(IsSpecFile).Order(StringComparer.Ordinal);
    }

    /// <summary>Spec files are named *.json or *.yaml (other files in the directories are ignored).</summary>
    public static bool IsSpecFile(string path) => path.EndsWith(".json", StringComparison.Ordinal) || path.EndsWith(".yaml", StringComparison.Ordinal);

    /// <summary>
    /// The edits of <paramref name="devices"/> (fully-qualified names, each once). A name that is not fully qualified is an
    /// InvalidArgument error; devices no valid spec defines are a NotFound error naming them and the directories searched
    /// (FailedPrecondition for a device whose definitions conflict); a device node missing on the host is FailedPrecondition.
    /// </summary>
    public CdiInjection Resolve(IReadOnlyList<string> devices)
    {
        if (devices.Count == 0) return CdiInjection.None;
        var found = new List<(CdiSpecFile, CdiDevice)>(devices.Count);
        List<string>? unknown = null;
        foreach (var name in devices)
        {
            if (_devices.TryGetValue(name, out var entry))
            {
                found.Add(entry);
                continue;
            }
            if (!CdiNames.TryParseQualified(name, out _, out var reason))
                throw new CdiException(CdiErrorKind.InvalidArgument, $"CDI device \"{name}\" is not a fully-qualified name (vendor.com/class=name): {reason}");
            if (_conflicts.TryGetValue(name, out var files))
                throw new CdiException(CdiErrorKind.FailedPrecondition,
                    $"CDI device \"{name}\" is defined by more than one spec in the same directory ({string.Join(", ", files.Select(f => $"\"{f}\""))}), so none of them is used");
            (unknown ??= []).Add(name);
        }
        if (unknown is not null) throw new CdiException(CdiErrorKind.NotFound, UnknownMessage(unknown));
        return CdiResolver.Resolve(found);
    }

    private string UnknownMessage(List<string> unknown)
    {
        string which = unknown.Count == 1 ? $"CDI device \"{unknown[0]}\" is" : $"CDI devices {string.Join(", ", unknown.Select(u => $"\"{u}\""))} are";
        string message = $"{which} not defined by any valid spec in {string.Join(", ", SpecDirectories)}";
        var invalid = Errors.Select(e => e.File).Distinct().ToArray();
        if (invalid.Length > 0)
            message += $" (specs with errors, which were skipped: {string.Join(", ", invalid.Take(3))}{(invalid.Length > 3 ? $" and {invalid.Length - 3} more" : "")})";
        return message;
    }
}
