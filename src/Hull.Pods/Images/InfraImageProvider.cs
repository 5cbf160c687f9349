using Hull.Core;
using Hull.Sandbox.PodSandbox;
using Microsoft.Extensions.Logging;

namespace Hull.Pods.Images;

/// <summary>
/// The <c>pinned_images.sandbox</c> pause image for the podsandbox sandboxer: found in the image store (pulled when
/// missing, anonymously, as containerd pulls its sandbox image), then a writable snapshot of it per pod under
/// <see cref="InfraSnapshots.Key"/>, which garbage collection keeps while the pod is in the sandbox store
/// (<see cref="GcRoots"/>). The image itself is pinned by config, so the kubelet's image GC leaves it.
/// </summary>
public sealed class InfraImageProvider(IContainerImages images, ILogger<InfraImageProvider> logger) : IInfraImageProvider
{
    public async Task<InfraImage> PrepareAsync(string sandboxId, string image, CancellationToken cancellationToken)
    {
        var found = await images.FindAsync(image, cancellationToken).ConfigureAwait(false);
        if (found is null)
        {
            logger.LogInformation("pulling sandbox image {Image}", image);
            try
            {
                found = await images.PullAsync(image, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                throw new HullException(e.Kind, $"cannot pull sandbox image \"{image}\" (pinned_images.sandbox) for pod sandbox \"{sandboxId}\": {e.Message}", e);
            }
        }
        string key = InfraSnapshots.Key(sandboxId);
        // One left by an interrupted earlier start of this pod is replaced.
        if (await images.Snapshotter.TryStatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            await images.Snapshotter.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        var mounts = await images.Snapshotter.PrepareAsync(key, found.ChainId,
            new Dictionary<string, string> { ["io.hull.sandbox"] = sandboxId }, cancellationToken).ConfigureAwait(false);
        return new InfraImage(image, mounts, found.Config);
    }

    public async Task ReleaseAsync(string sandboxId, CancellationToken cancellationToken)
    {
        string key = InfraSnapshots.Key(sandboxId);
        if (await images.Snapshotter.TryStatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            await images.Snapshotter.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
    }
}
