using Hull.Core;
using Hull.Images;
using Hull.Images.Reference;
using Hull.Images.Snapshots;
using Hull.Runtime.Spec;

namespace Hull.Pods.Images;

/// <summary>An image as a container or an infra process runs it: who it is, which snapshot chain holds it, how it runs.</summary>
/// <param name="Ref">The image's repo digest when it has one, else its id (CRI image_ref).</param>
public sealed record ContainerImage(string Id, string ChainId, string Ref, ImageConfig Config)
{
    /// <summary>
    /// The name containers report the image by (CRI ContainerStatus.image): the tag the image was asked for when it is
    /// one of the image's tags, else its first tag (containerd's repoTags[0]: the kubelet asks by image id, and the pod's
    /// status and <c>kubectl describe</c> show this), else what was asked for. Null: the reference it was found by.
    /// </summary>
    public string? Name { get; init; }
}

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
        string name = NameFor(reference, summary.RepoTags);
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
        }) { Name = name };
    }

    /// <summary>See <see cref="ContainerImage.Name"/>: the tag asked for, else the image's first tag, else the reference as given.</summary>
    internal static string NameFor(string reference, IReadOnlyList<string> repoTags) =>
        ImageReference.TryParseDockerRef(reference, out var asked) && repoTags.Contains(asked.ToString())
            ? asked.ToString()
            : repoTags.FirstOrDefault() ?? reference;

    public async Task<ContainerImage> PullAsync(string reference, CancellationToken cancellationToken)
    {
        await images.PullAsync(reference, null, null, cancellationToken).ConfigureAwait(false);
        return await FindAsync(reference, cancellationToken).ConfigureAwait(false)
               ?? throw new HullException(ErrorKind.NotFound, $"image \"{reference}\" not found after pulling it");
    }
}
