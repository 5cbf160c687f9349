using Hull.Core;

namespace Hull.Runtime.Spec;

/// <summary>linux.cgroupsPath for each cgroup driver (containerd's getCgroupsPath, with Hull's names).</summary>
public static class CgroupsPath
{
    /// <summary>The systemd scope prefix: a container's unit is "hull-&lt;id&gt;.scope".</summary>
    public const string SystemdPrefix = "hull";
    /// <summary>Where cgroupfs containers of a pod without a cgroup parent go.</summary>
    public const string CgroupfsRoot = "/hull";

    /// <summary>
    /// cgroupfs: "&lt;parent&gt;/&lt;container id&gt;", or "/hull/&lt;sandbox id&gt;/&lt;container id&gt;" without a parent.
    /// systemd: "&lt;parent slice&gt;:hull:&lt;container id&gt;", the parent being the last element of the kubelet's path
    /// and a ".slice"; without a parent, system.slice (runc's default).
    /// </summary>
    public static string For(CgroupDriver driver, string? cgroupParent, string sandboxId, string containerId)
    {
        string parent = (cgroupParent ?? "").Trim();
        if (driver == CgroupDriver.Systemd)
        {
            if (parent.Length == 0) return $"system.slice:{SystemdPrefix}:{containerId}";
            string slice = parent.TrimEnd('/').Split('/')[^1];
            if (!slice.EndsWith(".slice", StringComparison.Ordinal))
                throw new HullException(ErrorKind.InvalidArgument,
                    $"cgroup parent \"{cgroupParent}\" is not a systemd slice, but the cgroup driver is systemd (the kubelet's cgroupDriver must match Hull's)");
            return $"{slice}:{SystemdPrefix}:{containerId}";
        }
        if (parent.Length == 0) return $"{CgroupfsRoot}/{sandboxId}/{containerId}";
        if (parent.EndsWith(".slice", StringComparison.Ordinal))
            throw new HullException(ErrorKind.InvalidArgument,
                $"cgroup parent \"{cgroupParent}\" is a systemd slice, but the cgroup driver is cgroupfs (the kubelet's cgroupDriver must match Hull's)");
        if (!parent.StartsWith('/')) parent = "/" + parent;
        return $"{parent.TrimEnd('/')}/{containerId}";
    }
}
