using Hull.Core;

namespace Hull.Images.Verifiers;

/// <summary>An image verifier rejected an image; the pull fails with <see cref="ErrorKind.FailedPrecondition"/>.</summary>
public sealed class VerificationFailedException(string imageName, string verifier, string reason)
    : HullException(ErrorKind.FailedPrecondition, $"image \"{imageName}\" rejected by verifier \"{verifier}\": {reason}")
{
    public string ImageName { get; } = imageName;
    public string Verifier { get; } = verifier;
    public string Reason { get; } = reason;
}
