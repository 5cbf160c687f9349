using Hull.Config;
using Hull.Core.Events;
using Hull.Core.Metadata;
using Hull.Cri.Containers;
using Hull.Images;
using Hull.Runtime.Spec;
using Hull.Sandbox;
using Microsoft.Extensions.Logging;

namespace Hulld;

/// <summary>Wires containers: the store, the spec builder for this node, and the pods' task endpoints; recovers what ran before.</summary>
internal static class ContainerComposition
{
    public static async Task<ContainerManager> OpenAsync(HullConfig config, MetadataStore metadata, ImageManager images, SandboxManager sandboxes,
        EventBroadcaster<ContainerEvent> events, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var runtime = config.Runtime;
        var handler = runtime.Runtimes.TryGetValue(runtime.DefaultRuntimeName, out var h) ? h : new RuntimeHandlerConfig();
        var specs = new SpecBuilder(new SpecBuilderOptions
        {
            CgroupDriver = handler.SystemdCgroup ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
            // Root without CAP_SYS_RESOURCE cannot lower oom_score_adj; runc then fails unless the request is clamped.
            RestrictOomScoreAdj = runtime.RestrictOomScoreAdj || !OomScoreAdjPolicy.CanLower(),
            TolerateMissingHugetlbController = runtime.TolerateMissingHugetlbController,
            DefaultSeccompProfile = runtime.UnsetSeccompProfile is "runtime/default" or "RuntimeDefault"
                ? SecurityProfile.RuntimeDefault : SecurityProfile.Unconfined,
        }, HostInfo.Detect());
        var manager = new ContainerManager(new ContainerStore(metadata), sandboxes, images, specs, events, config.State,
            loggers.CreateLogger<ContainerManager>())
        {
            // Each pod's containers use the cgroup driver of the pod's own runtime handler ("" is the default handler).
            CgroupDriverFor = name =>
                runtime.Runtimes.TryGetValue(name.Length == 0 ? runtime.DefaultRuntimeName : name, out var h) && h.SystemdCgroup
                    ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
        };
        sandboxes.StopContainers = manager.StopPodContainersAsync;
        sandboxes.RemoveContainers = manager.RemovePodContainersAsync;
        await manager.RecoverAsync(cancellationToken).ConfigureAwait(false);
        return manager;
    }
}
