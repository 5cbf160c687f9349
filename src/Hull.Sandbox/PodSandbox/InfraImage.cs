using Hull.Linux;
using Hull.Runtime.Spec;

namespace Hull.Sandbox.PodSandbox;

/// <summary>
/// A pause image made ready for one pod's infra process: the mounts of a read-only snapshot of it (applied, in order, on
/// the infra bundle's empty <c>rootfs</c>) and its runtime config (entrypoint, cmd, env, working dir, user).
/// </summary>
public sealed record InfraImage(string Reference, IReadOnlyList<Mount> Mounts, ImageConfig Config);

/// <summary>
/// Where the <c>podsandbox</c> sandboxer gets a configured <c>pinned_images.sandbox</c> image from. The sandbox layer
/// cannot reach the image store (dependencies point down), so the composition root implements this over the images.
/// Each pod has its own snapshot, keyed by <see cref="SnapshotKey"/>, which garbage collection must treat as a root for
/// as long as the pod is in the sandbox store.
/// </summary>
public interface IInfraImageProvider
{
    /// <summary>Pulls <paramref name="image"/> when it is missing and prepares the pod's read-only snapshot of it.</summary>
    Task<InfraImage> PrepareAsync(string sandboxId, string image, CancellationToken cancellationToken);

    /// <summary>Removes the pod's snapshot (the caller has unmounted it). Idempotent: no snapshot is no error.</summary>
    Task ReleaseAsync(string sandboxId, CancellationToken cancellationToken);
}

/// <summary>One home for the infra snapshot's name.</summary>
public static class InfraSnapshots
{
    public const string KeyPrefix = "sandbox-infra-";

    /// <summary>The snapshot key of a pod's pause-image rootfs.</summary>
    public static string Key(string sandboxId) => KeyPrefix + sandboxId;
}
