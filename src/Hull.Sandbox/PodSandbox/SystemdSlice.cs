using Hull.Core;

namespace Hull.Sandbox.PodSandbox;

/// <summary>
/// The kubelet's pod cgroup under the systemd cgroup driver: a slice name such as
/// <c>kubepods-burstable-pod1234.slice</c> (or a path whose last element is one). Hull makes no pod cgroup with this
/// driver: the kubelet has systemd create the slice, and runc puts each container (and the infra process) in a scope
/// below it, <c>&lt;slice&gt;:hull:&lt;id&gt;</c> (see <see cref="Runtime.Spec.CgroupsPath"/>). Hull only reads the
/// slice's cgroup for pod stats.
/// </summary>
public static class SystemdSlice
{
    /// <summary>The slice a cgroup parent names, or InvalidArgument when it is not a systemd slice.</summary>
    public static string Parse(string cgroupParent, string sandboxId)
    {
        string slice = cgroupParent.Trim().TrimEnd('/').Split('/')[^1];
        if (!slice.EndsWith(".slice", StringComparison.Ordinal) || slice.Length == ".slice".Length || !IsValidUnitName(slice))
            throw new HullException(ErrorKind.InvalidArgument,
                $"pod sandbox \"{sandboxId}\": cgroup parent \"{cgroupParent}\" is not a systemd slice (name.slice), but the cgroup driver is systemd (the kubelet's cgroupDriver must match Hull's SystemdCgroup)");
        return slice;
    }

    /// <summary>
    /// The slice's path in the cgroup tree, as systemd (and runc's ExpandSlice) builds it: every '-' starts a parent,
    /// so <c>a-b-c.slice</c> is <c>/a.slice/a-b.slice/a-b-c.slice</c>; <c>-.slice</c> is the root.
    /// </summary>
    public static string Expand(string slice)
    {
        if (!slice.EndsWith(".slice", StringComparison.Ordinal) || slice.Contains('/'))
            throw new ArgumentException($"\"{slice}\" is not a slice name", nameof(slice));
        string name = slice[..^".slice".Length];
        if (name == "-") return "/";
        if (name.Length == 0 || name.StartsWith('-') || name.EndsWith('-') || name.Contains("--", StringComparison.Ordinal))
            throw new ArgumentException($"\"{slice}\" is not a valid slice name", nameof(slice));
        var path = new System.Text.StringBuilder();
        string prefix = "";
        foreach (var part in name.Split('-'))
        {
            prefix = prefix.Length == 0 ? part : prefix + "-" + part;
            path.Append('/').Append(prefix).Append(".slice");
        }
        return path.ToString();
    }

    private static bool IsValidUnitName(string name) =>
        name.Length <= 255 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is ':' or '_' or '.' or '-' or '\\' or '@');
}
