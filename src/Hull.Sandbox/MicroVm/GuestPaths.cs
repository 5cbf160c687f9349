namespace Hull.Sandbox.MicroVm;

/// <summary>
/// What the host and the guest (cmd/hull-agent, its init.sh) agree on: device names, mount points and paths. A change
/// here needs the same change in cmd/hull-agent/agent.h or init.sh.
/// </summary>
public static class GuestPaths
{
    /// <summary>The virtio-serial port the agent listens on (virtserialport name=).</summary>
    public const string AgentPortName = "hull.agent";
    /// <summary>The 9p mount tag of the host's share.</summary>
    public const string ShareTag = "hull";
    /// <summary>Where the guest mounts the share.</summary>
    public const string SharedDirectory = "/run/hull/shared";
    /// <summary>The pod's /dev/shm tmpfs in the guest.</summary>
    public const string ShmDirectory = "/run/hull/shm";
    /// <summary>The agent reads container cgroups at /sys/fs/cgroup/hull/&lt;id&gt;: the rewritten spec puts them there.</summary>
    public const string CgroupParent = "/hull";
    /// <summary>
    /// A pod that shares its PID namespace shares the guest's (the agent's, PID 1): the VM is the pod. As a host path
    /// this is never opened; the spec rewrite passes it to runc in the guest as the namespace to join.
    /// </summary>
    public const string SharedPidNamespace = "/proc/1/ns/pid";
    /// <summary>The guest NIC of the pod's first network attachment.</summary>
    public const string Interface = "eth0";

    public static string ContainerDirectory(string containerId) => $"{SharedDirectory}/{containerId}";
    public static string Rootfs(string containerId) => $"{ContainerDirectory(containerId)}/rootfs";
    public static string MountSource(string containerId, int index) => $"{ContainerDirectory(containerId)}/m{index}";
}
