using Hull.Nri;
using Hull.Pods.Stores;

namespace Hull.Pods.Hooks;

/// <summary>What NRI plugins see of and do to the lifecycle: the pods and containers for Synchronize, and the updates and
/// evictions they send on their own.</summary>
public sealed class NriRuntime(PodManager pods, ContainerManager containers, NriHooks hooks) : INriRuntime
{
    public async Task<NriSnapshot> SnapshotAsync(CancellationToken cancellationToken)
    {
        var list = new List<NriContainer>();
        foreach (var container in containers.List())
            list.Add(NriHooks.Container(container, await hooks.SpecOfAsync(container, cancellationToken).ConfigureAwait(false)));
        return new NriSnapshot(pods.List().Select(NriHooks.Pod).ToList(), list);
    }

    public Task<IReadOnlyList<NriContainerUpdate>> UpdateContainersAsync(IReadOnlyList<NriContainerUpdate> updates,
        IReadOnlyList<NriContainerEviction> evictions, CancellationToken cancellationToken) =>
        containers.ApplyNriAsync(updates, evictions);
}
