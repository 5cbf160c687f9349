namespace Hull.Cdi;

/// <summary>Which devices a container asks for (containerd's WithCDI).</summary>
public static class CdiRequest
{
    /// <summary>
    /// The devices of CRI's <c>CDI_devices</c> field, then those of <c>cdi.k8s.io/*</c> annotations, each once, in that
    /// order. An annotation naming a device that is not fully qualified is an InvalidArgument error.
    /// </summary>
    public static IReadOnlyList<string> Devices(IEnumerable<string> criDevices, IReadOnlyDictionary<string, string> annotations)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var devices = new List<string>();
        foreach (var device in criDevices.Concat(CdiAnnotations.RequestedDevices(annotations)))
            if (seen.Add(device)) devices.Add(device);
        return devices;
    }
}
