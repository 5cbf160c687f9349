using Hull.Core;
using Hull.Images;
using Hull.Sandbox.PodSandbox;
using Microsoft.Extensions.Logging;

namespace Hulld;

/// <summary>
/// The <c>pinned_images.sandbox</c> pause image for the podsandbox sandboxer: found in the image store (pulled when
/// missing, anonymously, as containerd pulls its sandbox image), then a writable snapshot of it per pod under
/// <see cref="InfraSnapshots.Key"/>, which garbage collection keeps while the pod is in the sandbox store
/// (see <see cref="ImagesComposition"/>). The image itself is pinned by config, so the kubelet's image GC leaves it.
/// </summary>
internal sealed class InfraImageProvider(ImageManager images, ILogger<InfraImageProvider> logger) : IInfraImageProvider
{
    public async Task<InfraImage> PrepareAsync(string sandboxId, string image, CancellationToken cancellationToken)
    {
        var summary = await images.FindAsync(image, cancellationToken).ConfigureAwait(false);
        if (summary is null)
        {
            logger.LogInformation("pulling sandbox image {Image}", image);
            try
            {
                await images.PullAsync(image, null, null, cancellationToken).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                throw new HullException(e.Kind, $"cannot pull sandbox image \"{image}\" (pinned_images.sandbox) for pod sandbox \"{sandboxId}\": {e.Message}", e);
            }
            summary = await images.FindAsync(image, cancellationToken).ConfigureAwait(false)
                      ?? throw new HullException(ErrorKind.NotFound, $"sandbox image \"{image}\" not found after pulling it");
        }
        var config = (await images.ConfigAsync(summary, cancellationToken).ConfigureAwait(false)).Config;
        string key = InfraSnapshots.Key(sandboxId);
        // One left by an interrupted earlier start of this pod is replaced.
        if (await images.Snapshotter.TryStatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            await images.Snapshotter.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        var mounts = await images.Snapshotter.PrepareAsync(key, summary.ChainId,
            new Dictionary<string, string> { ["io.hull.sandbox"] = sandboxId }, cancellationToken).ConfigureAwait(false);
        return new InfraImage(image, mounts, new Hull.Runtime.Spec.ImageConfig
        {
            Entrypoint = config.Entrypoint ?? [],
            Cmd = config.Cmd ?? [],
            Env = config.Env ?? [],
            WorkingDir = config.WorkingDir,
            User = config.User,
            StopSignal = config.StopSignal,
        });
    }

    public async Task ReleaseAsync(string sandboxId, CancellationToken cancellationToken)
    {
        string key = InfraSnapshots.Key(sandboxId);
        if (await images.Snapshotter.TryStatAsync(key, cancellationToken).ConfigureAwait(false) is not null)
            await images.Snapshotter.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
    }
}
