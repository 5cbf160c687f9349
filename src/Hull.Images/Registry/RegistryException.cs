using System.Net;
using Hull.Core;
using Hull.Core.Deprecations;

namespace Hull.Images.Registry;

/// <summary>A registry answered with an error, or could not be reached.</summary>
public class RegistryException(
    ErrorKind kind,
    string message,
    string host,
    HttpStatusCode? statusCode = null,
    IReadOnlyList<RegistryError>? errors = null,
    Exception? inner = null) : HullException(kind, message, inner)
{
    /// <summary>The registry host (or mirror) that failed, as <c>host[:port]</c>.</summary>
    public string Host { get; } = host;

    /// <summary>The HTTP status, or null when no response arrived.</summary>
    public HttpStatusCode? StatusCode { get; } = statusCode;

    /// <summary>The errors the registry gave in its body.</summary>
    public IReadOnlyList<RegistryError> Errors { get; } = errors ?? [];
}

/// <summary>
/// The image is a Docker schema 1 manifest, which Hull refuses. Callers record the
/// <see cref="DeprecationId"/> warning when they catch this.
/// </summary>
public sealed class Schema1ImageException(string image)
    : HullException(ErrorKind.FailedPrecondition, $"image \"{image}\" uses Docker schema 1, which Hull does not pull")
{
    public string Image { get; } = image;

    public string DeprecationId => DeprecationIds.PullSchema1Image;
}
