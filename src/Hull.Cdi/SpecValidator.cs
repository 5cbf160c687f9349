namespace Hull.Cdi;

/// <summary>One problem of a spec file: the file, the field (a JSON path; empty for the whole file) and why.</summary>
public sealed record CdiSpecError(string File, string Field, string Reason)
{
    public override string ToString() => Field.Length == 0 ? $"CDI spec \"{File}\": {Reason}" : $"CDI spec \"{File}\": {Field}: {Reason}";
}

/// <summary>
/// The checks of the reference implementation's Spec.validate, Device.validate and ContainerEdits.Validate, each with the
/// field it is about. Unlike the reference, which stops at the first problem, every problem of the file is reported.
/// </summary>
public static class SpecValidator
{
    public static IReadOnlyList<(string Field, string Reason)> Validate(CdiSpec spec)
    {
        var errors = new List<(string, string)>();
        CheckVersion(spec, errors);

        var (vendor, @class) = CdiNames.SplitKind(spec.Kind);
        if ((CdiNames.CheckVendor(vendor) ?? CdiNames.CheckClass(@class)) is { } kindProblem)
            errors.Add(("kind", $"\"{spec.Kind}\" is not \"vendor/class\": {kindProblem}"));
        errors.AddRange(CdiAnnotations.Check(spec.Annotations, "annotations"));
        CheckEdits(spec.ContainerEdits, "containerEdits", errors);

        if (spec.Devices.Count == 0) errors.Add(("devices", "the spec has no devices"));
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < spec.Devices.Count; i++)
        {
            var device = spec.Devices[i];
            string at = $"devices[{i}]";
            if (CdiNames.CheckDevice(device.Name) is { } nameProblem) errors.Add(($"{at}.name", nameProblem));
            else if (!seen.TryAdd(device.Name, i)) errors.Add(($"{at}.name", $"device \"{device.Name}\" is defined twice (also devices[{seen[device.Name]}])"));
            errors.AddRange(CdiAnnotations.Check(device.Annotations, $"{at}.annotations"));
            if (device.ContainerEdits.IsEmpty) errors.Add(($"{at}.containerEdits", $"device \"{device.Name}\" has no edits"));
            CheckEdits(device.ContainerEdits, $"{at}.containerEdits", errors);
        }
        return errors;
    }

    private static void CheckVersion(CdiSpec spec, List<(string, string)> errors)
    {
        if (!CdiVersions.IsKnown(spec.CdiVersion))
        {
            errors.Add(("cdiVersion", $"invalid version \"{spec.CdiVersion}\" (Hull reads {CdiVersions.Earliest} to {CdiVersions.Current})"));
            return;
        }
        var required = CdiVersions.MinimumRequired(spec);
        if (CdiVersions.Compare(spec.CdiVersion, required.Version) < 0)
            errors.Add(("cdiVersion", required.Field.Length == 0
                ? $"version \"{spec.CdiVersion}\" is too old: the spec version must be at least v{required.Version}"
                : $"version \"{spec.CdiVersion}\" is too old for {required.Feature} ({required.Field}): the spec version must be at least v{required.Version}"));
    }

    private static void CheckEdits(CdiContainerEdits edits, string at, List<(string, string)> errors)
    {
        CheckEnv(edits.Env, $"{at}.env", errors);
        for (int i = 0; i < edits.DeviceNodes.Count; i++)
        {
            var node = edits.DeviceNodes[i];
            string field = $"{at}.deviceNodes[{i}]";
            if (node.Path.Length == 0) errors.Add(($"{field}.path", "empty device path"));
            if (node.Type is not ("" or "b" or "c" or "u" or "p")) errors.Add(($"{field}.type", $"device \"{node.Path}\": invalid type \"{node.Type}\" (b, c, u or p)"));
            if (node.Permissions is not ("" or DeviceNodeResolver.NoPermissions) && node.Permissions.Trim("rwm".ToCharArray()).Length > 0)
                errors.Add(($"{field}.permissions", $"device \"{node.Path}\": invalid permissions \"{node.Permissions}\" (a combination of r, w and m, or \"none\")"));
        }
        for (int i = 0; i < edits.Hooks.Count; i++)
        {
            var hook = edits.Hooks[i];
            string field = $"{at}.hooks[{i}]";
            if (!CdiHookNames.All.Contains(hook.HookName))
                errors.Add(($"{field}.hookName", $"invalid hook name \"{hook.HookName}\" (one of {string.Join(", ", CdiHookNames.All)})"));
            if (hook.Path.Length == 0) errors.Add(($"{field}.path", $"hook \"{hook.HookName}\" has an empty path"));
            CheckEnv(hook.Env, $"{field}.env", errors);
        }
        for (int i = 0; i < edits.Mounts.Count; i++)
        {
            var mount = edits.Mounts[i];
            if (mount.HostPath.Length == 0) errors.Add(($"{at}.mounts[{i}].hostPath", "empty host path"));
            if (mount.ContainerPath.Length == 0) errors.Add(($"{at}.mounts[{i}].containerPath", "empty container path"));
        }
        if (edits.IntelRdt is { } rdt && !ValidClosId(rdt.ClosId))
            errors.Add(($"{at}.intelRdt.closID", $"invalid closID \"{rdt.ClosId}\" (a file name, or \"/\" for the root class)"));
        CheckNetDevices(edits.NetDevices, $"{at}.netDevices", errors);
    }

    // ValidateEnv: each entry is NAME=value with a non-empty name.
    private static void CheckEnv(IReadOnlyList<string> env, string at, List<(string, string)> errors)
    {
        for (int i = 0; i < env.Count; i++)
            if (env[i].IndexOf('=') <= 0) errors.Add(($"{at}[{i}]", $"invalid environment variable \"{env[i]}\" (expected NAME=value)"));
    }

    // The CLOS is a directory under /sys/fs/resctrl; "/" is the root class.
    private static bool ValidClosId(string closId) =>
        closId == "/" || (closId.Length < 4096 && closId is not ("." or "..") && closId.IndexOfAny(['/', '\n']) < 0);

    private static void CheckNetDevices(IReadOnlyList<CdiNetDevice> devices, string at, List<(string, string)> errors)
    {
        var hosts = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < devices.Count; i++)
        {
            var d = devices[i];
            string field = $"{at}[{i}]";
            if (d.HostInterfaceName.Length == 0) errors.Add(($"{field}.hostInterfaceName", "empty host interface name"));
            if (d.Name.Length == 0) errors.Add(($"{field}.name", "empty interface name"));
            if (d.HostInterfaceName.Length == 0 || d.Name.Length == 0) continue;
            if (hosts.TryGetValue(d.HostInterfaceName, out var other))
                errors.Add(($"{field}.hostInterfaceName", $"duplicate host interface \"{d.HostInterfaceName}\" (names \"{d.Name}\" and \"{other}\")"));
            else hosts[d.HostInterfaceName] = d.Name;
            if (names.TryGetValue(d.Name, out var otherHost))
                errors.Add(($"{field}.name", $"duplicate interface name \"{d.Name}\" (host interfaces \"{d.HostInterfaceName}\" and \"{otherHost}\")"));
            else names[d.Name] = d.HostInterfaceName;
        }
    }
}
