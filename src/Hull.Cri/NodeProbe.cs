using Hull.Config;

namespace Hull.Cri;

/// <summary>Answers readiness questions about the node from what is really on it.</summary>
public sealed class NodeProbe
{
    /// <summary>The OCI runtime binary of a handler, resolved on PATH; null when it cannot be found.</summary>
    public string? ResolveRuntimeBinary(RuntimeHandlerConfig handler)
    {
        string name = handler.BinaryName.Length > 0 ? handler.BinaryName : "runc";
        if (Path.IsPathRooted(name)) return File.Exists(name) ? name : null;
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static bool CgroupV2Unified => File.Exists("/sys/fs/cgroup/cgroup.controllers");
}
