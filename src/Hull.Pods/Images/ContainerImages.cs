using Hull.Core;
using Hull.Images;
using Hull.Images.Snapshots;
using Hull.Runtime.Spec;

namespace Hull.Pods.Images;

/// <summary>An image as a container or an infra process runs it: who it is, which snapshot chain holds it, how it runs.</summary>
public sealed record ContainerImage(string Id, string ChainId, string Ref, ImageConfig Config);

/// <summary>What the lifecycle needs of the image store: find (or pull) an image, and the snapshotter its layers are in.</summary>
public interface IContainerImages
{
    /// <summary>The image a reference, id or id prefix names; null when it is not in the store.</summary>
    Task<ContainerImage?> FindAsync(string reference, CancellationToken cancellationToken);

    /// <summary>Pulls anonymously (the sandbox image) and returns it.</summary>
    Task<ContainerImage> PullAsync(string reference, CancellationToken cancellationToken);

    ISnapshotter Snapshotter { get; }
}

/// <summary><see cref="IContainerImages"/> over Hull's image store.</summary>
public sealed class ContainerImages(ImageManager images) : IContainerImages
{
    public ISnapshotter Snapshotter => images.Snapshotter;

    public async Task<ContainerImage?> FindAsync(string reference, CancellationToken cancellationToken)
    {
        var summary = await images.FindAsync(reference, cancellationToken).ConfigureAwait(false);
        if (summary is null) return null;
        var execution = (await images.ConfigAsync(summary, cancellationToken).ConfigureAwait(false)).Config;
        return new ContainerImage(summary.Id, summary.ChainId, summary.RepoDigests.FirstOrDefault() ?? summary.Id, new ImageConfig
        {
            Entrypoint = execution.Entrypoint ?? [],
            Cmd = execution.Cmd ?? [],
            Env = execution.Env ?? [],
            WorkingDir = execution.WorkingDir,
            User = execution.User,
            StopSignal = execution.StopSignal,
            Volumes = execution.Volumes?.Keys.ToList() ?? [],
            Labels = execution.Labels ?? new Dictionary<string, string>(),
        });
    }

    public async Task<ContainerImage> PullAsync(string reference, CancellationToken cancellationToken)
    {
        await images.PullAsync(reference, null, null, cancellationToken).ConfigureAwait(false);
        return await FindAsync(reference, cancellationToken).ConfigureAwait(false)
               ?? throw new HullException(ErrorKind.NotFound, $"image \"{reference}\" not found after pulling it");
    }
}
