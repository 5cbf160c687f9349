namespace Hull.Cdi;

/// <summary>A fully-qualified CDI device name, "vendor.com/class=name".</summary>
public readonly record struct CdiDeviceName(string Vendor, string Class, string Name)
{
    public string Kind => $"{Vendor}/{Class}";
    public override string ToString() => $"{Vendor}/{Class}={Name}";
}

/// <summary>
/// The name grammar of pkg/parser: vendor and class start with a letter, end with a letter or digit and hold letters,
/// digits, '_', '-' and '.'; a device name starts and ends with a letter or digit and may also hold ':'. Each check
/// returns null when the name is valid, else the reason.
/// </summary>
public static class CdiNames
{
    /// <summary>Splits "vendor/class=name"; the reason when it is not a valid fully-qualified name.</summary>
    public static bool TryParseQualified(string device, out CdiDeviceName name, out string? reason)
    {
        name = default;
        var (vendor, @class, deviceName) = Split(device);
        reason = vendor.Length == 0 ? $"unqualified device \"{device}\", missing vendor"
            : @class.Length == 0 ? $"unqualified device \"{device}\", missing class"
            : deviceName.Length == 0 ? $"unqualified device \"{device}\", missing device name"
            : null;
        if (reason is not null) return false;
        string? invalid = CheckVendor(vendor) ?? CheckClass(@class) ?? CheckDevice(deviceName);
        if (invalid is not null)
        {
            reason = $"invalid device \"{device}\": {invalid}";
            return false;
        }
        name = new CdiDeviceName(vendor, @class, deviceName);
        return true;
    }

    public static bool IsQualified(string device) => TryParseQualified(device, out _, out _);

    /// <summary>"vendor/class" into its parts; an empty vendor when there is no slash (parser.ParseQualifier).</summary>
    public static (string Vendor, string Class) SplitKind(string kind)
    {
        int slash = kind.IndexOf('/');
        return slash <= 0 || slash == kind.Length - 1 ? ("", kind) : (kind[..slash], kind[(slash + 1)..]);
    }

    // parser.ParseDevice: an absolute path or anything without "vendor/class=" is unqualified.
    private static (string Vendor, string Class, string Name) Split(string device)
    {
        if (device.Length == 0 || device[0] == '/') return ("", "", device);
        int eq = device.IndexOf('=');
        if (eq <= 0 || eq == device.Length - 1) return ("", "", device);
        var (vendor, @class) = SplitKind(device[..eq]);
        return vendor.Length == 0 ? ("", "", device) : (vendor, @class, device[(eq + 1)..]);
    }

    public static string? CheckVendor(string vendor) => CheckVendorOrClass(vendor) is { } r ? $"invalid vendor: {r}" : null;

    public static string? CheckClass(string @class) => CheckVendorOrClass(@class) is { } r ? $"invalid class: {r}" : null;

    private static string? CheckVendorOrClass(string name)
    {
        if (name.Length == 0) return "empty name";
        if (!char.IsAsciiLetter(name[0])) return $"\"{name}\" should start with a letter";
        if (name.Length == 1) return null;
        foreach (char c in name.AsSpan(1, name.Length - 2))
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.'))
                return $"invalid character '{c}' in name \"{name}\"";
        return char.IsAsciiLetterOrDigit(name[^1]) ? null : $"\"{name}\" should end with a letter or digit";
    }

    public static string? CheckDevice(string name)
    {
        if (name.Length == 0) return "empty device name";
        if (!char.IsAsciiLetterOrDigit(name[0])) return $"device name \"{name}\" should start with a letter or digit";
        if (name.Length == 1) return null;
        foreach (char c in name.AsSpan(1, name.Length - 2))
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.' or ':'))
                return $"invalid character '{c}' in device name \"{name}\"";
        return char.IsAsciiLetterOrDigit(name[^1]) ? null : $"device name \"{name}\" should end with a letter or digit";
    }
}
