using Hull.Images.Oci;

namespace Hull.Images.Verifiers;

/// <summary>
/// A verdict on whether an image may be pulled (containerd's <c>imageverifier.Judgement</c>).
/// <see cref="Reason"/> is the text containerd would report; when the image is rejected,
/// <see cref="Verifier"/> and <see cref="VerifierReason"/> say which verifier rejected it and why.
/// </summary>
public sealed record Judgement(bool Ok, string Reason)
{
    /// <summary>When rejected: the verifier (for bindir, the executable's file name) that rejected the image.</summary>
    public string? Verifier { get; init; }

    /// <summary>When rejected: why, without the verifier's name (its exit code and stdout, or why it could not run).</summary>
    public string? VerifierReason { get; init; }

    /// <summary>Throws <see cref="VerificationFailedException"/> unless the image is allowed.</summary>
    public void EnsureAllowed(string imageName)
    {
        if (!Ok) throw new VerificationFailedException(imageName, Verifier ?? "unknown", VerifierReason ?? Reason);
    }
}

/// <summary>
/// Decides whether an image may be pulled, after its manifest is resolved and before any layer is fetched
/// (containerd's <c>imageverifier.ImageVerifier</c>, plugin type <c>io.containerd.image-verifier.v1</c>).
/// </summary>
public interface IImageVerifier
{
    /// <param name="imageName">The image reference as requested.</param>
    /// <param name="manifest">The descriptor of the resolved manifest (or index) the pull will fetch.</param>
    /// <param name="ct">Cancels the verification (and kills a running verifier).</param>
    Task<Judgement> VerifyAsync(string imageName, Descriptor manifest, CancellationToken ct);
}

public static class ImageVerifierExtensions
{
    /// <summary>
    /// Runs the verifier and throws <see cref="VerificationFailedException"/>
    /// (<c>image "x" rejected by verifier "v": reason</c>) when it does not allow the image. For the puller.
    /// </summary>
    public static async Task<Judgement> EnsureAllowedAsync(this IImageVerifier verifier, string imageName, Descriptor manifest,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        var judgement = await verifier.VerifyAsync(imageName, manifest, ct).ConfigureAwait(false);
        ImagesTelemetry.Verified(judgement.Ok);
        judgement.EnsureAllowed(imageName);
        return judgement;
    }
}
