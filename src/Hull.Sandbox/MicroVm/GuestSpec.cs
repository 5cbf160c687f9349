using System.Text.Json.Nodes;
using Hull.Core;

namespace Hull.Sandbox.MicroVm;

/// <summary>A host path the guest needs for a container: the rootfs or a bind-mount source (<see cref="MountIndex"/>).</summary>
public sealed record SharedPath(string HostPath, int? MountIndex);

/// <summary>
/// Turns the OCI config the spec builder wrote for the host into the one runc runs in the guest. The VM is the pod:
/// its network, IPC and UTS namespaces are the guest's own, so the containers join those (the entries that name host
/// namespaces go, and with UTS the hostname, which the agent set for the whole guest); pod sysctls were applied to
/// the guest at boot and leave the container spec (runc refuses them outside a namespace of the container's own). The
/// rootfs and every bind-mount source move under the 9p share, /dev/shm becomes the pod's tmpfs in the guest, and the
/// cgroup goes where the agent reads it. Host-only settings go: OCI hooks (host binaries), host devices, AppArmor and
/// SELinux labels (the guest loads no policy).
/// </summary>
public static class GuestSpec
{
    private static readonly HashSet<string> VmNamespaces = ["network", "ipc", "uts"];

    public static (JsonObject Config, IReadOnlyList<SharedPath> Shares) Rewrite(JsonObject hostConfig, string bundlePath, string containerId)
    {
        var config = hostConfig.DeepClone().AsObject();
        var shares = new List<SharedPath>();

        var root = config["root"] as JsonObject ?? throw Invalid(containerId, "has no root");
        var rootPath = root["path"]?.GetValue<string>() ?? throw Invalid(containerId, "has no root.path");
        shares.Add(new SharedPath(Path.IsPathRooted(rootPath) ? rootPath : Path.Combine(bundlePath, rootPath), null));
        root["path"] = GuestPaths.Rootfs(containerId);

        if (config["mounts"] is JsonArray mounts)
            for (int i = 0; i < mounts.Count; i++)
            {
                if (mounts[i] is not JsonObject mount) continue;
                if (mount["destination"]?.GetValue<string>() == "/dev/shm")
                {
                    // The pod's /dev/shm is the guest's tmpfs, shared by its containers: whatever the host spec had there
                    // (a bind of the host's, or runc's default private tmpfs) becomes a bind of it.
                    mounts[i] = new JsonObject
                    {
                        ["destination"] = "/dev/shm",
                        ["type"] = "bind",
                        ["source"] = GuestPaths.ShmDirectory,
                        ["options"] = new JsonArray("rbind", "nosuid", "nodev", "noexec"),
                    };
                    continue;
                }
                if (!IsBind(mount)) continue;
                var source = mount["source"]?.GetValue<string>() ?? throw Invalid(containerId, $"mount {i} has no source");
                shares.Add(new SharedPath(source, i));
                mount["source"] = GuestPaths.MountSource(containerId, i);
            }

        config.Remove("hostname");
        config.Remove("hooks");
        if (config["process"] is JsonObject process)
        {
            process.Remove("apparmorProfile");
            process.Remove("selinuxLabel");
        }
        if (config["linux"] is JsonObject linux)
        {
            if (linux["namespaces"] is JsonArray namespaces)
            {
                if (namespaces.OfType<JsonObject>().Any(n => n["type"]?.GetValue<string>() == "user"))
                    throw new HullException(ErrorKind.InvalidArgument, $"container \"{containerId}\": user namespaces are not supported in microVM pods");
                foreach (var ns in namespaces.OfType<JsonObject>().Where(n => VmNamespaces.Contains(n["type"]?.GetValue<string>() ?? "")).ToList())
                    namespaces.Remove(ns);
            }
            linux.Remove("sysctl");
            linux.Remove("devices");
            linux.Remove("mountLabel");
            linux.Remove("intelRdt");
            linux["cgroupsPath"] = $"{GuestPaths.CgroupParent}/{containerId}";
        }
        return (config, shares);
    }

    /// <summary>The container's process with other arguments, for an exec (terminal as asked).</summary>
    public static JsonObject ExecProcess(JsonObject guestConfig, string containerId, IReadOnlyList<string> command, bool terminal,
        (ushort Width, ushort Height)? size = null)
    {
        var process = guestConfig["process"]?.DeepClone().AsObject() ?? throw Invalid(containerId, "has no process");
        process["args"] = new JsonArray(command.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray());
        process["terminal"] = terminal;
        process.Remove("consoleSize");
        if (terminal && size is { Width: > 0, Height: > 0 } s) process["consoleSize"] = new JsonObject { ["height"] = s.Height, ["width"] = s.Width };
        return process;
    }

    private static bool IsBind(JsonObject mount) =>
        mount["type"]?.GetValue<string>() == "bind" ||
        (mount["options"] as JsonArray)?.Any(o => o?.GetValue<string>() is "bind" or "rbind") == true;

    private static HullException Invalid(string containerId, string what) =>
        new(ErrorKind.InvalidArgument, $"the OCI config of container \"{containerId}\" {what}");
}
