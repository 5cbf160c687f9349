using System.Net;
using Hull.Core;

namespace Hull.Images.Registry;

/// <summary>The one place that turns a registry's error response into a <see cref="RegistryException"/>.</summary>
internal static class RegistryResponses
{
    private const int MaxErrorBody = 64 * 1024;

    /// <summary>
    /// The whole body, or null when it is larger than <paramref name="limit"/>: counted while reading, since a
    /// chunked response has no Content-Length to check first.
    /// </summary>
    public static async Task<byte[]?> ReadBoundedAsync(HttpResponseMessage response, int limit, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength > limit) return null;
        await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[16384];
        int n;
        while ((n = await body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > limit) return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// Maps a failed response. 401 and 403 are FailedPrecondition: the pull cannot succeed until credentials
    /// or permissions change, and Hull has no Unauthenticated kind (containerd reports these as
    /// "unexpected status ... 401 Unauthorized", i.e. gRPC Unknown). 404 is NotFound, 429 ResourceExhausted,
    /// 5xx Unavailable, 400 InvalidArgument (the registry rejected what we sent), other 4xx FailedPrecondition.
    /// </summary>
    /// <param name="subject">What was asked for, for the message: <c>image "x"</c>, <c>blob "sha256:…" of image "x"</c>.</param>
    public static async Task<RegistryException> ToExceptionAsync(HttpResponseMessage response, RegistryHost host, string subject, bool sentCredentials, CancellationToken ct)
    {
        IReadOnlyList<RegistryError> errors = await ReadErrorsAsync(response, ct).ConfigureAwait(false);
        string detail = Describe(response, errors);
        (ErrorKind kind, string message) = response.StatusCode switch
        {
            HttpStatusCode.NotFound => (ErrorKind.NotFound, $"{subject} not found on \"{host.Host}\" ({detail})"),
            HttpStatusCode.Unauthorized => (ErrorKind.FailedPrecondition,
                $"registry \"{host.Host}\" refused {(sentCredentials ? "the given credentials" : "anonymous access")} for {subject}: {detail}"),
            HttpStatusCode.Forbidden => (ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" denied access to {subject}: {detail}"),
            HttpStatusCode.TooManyRequests => (ErrorKind.ResourceExhausted, $"registry \"{host.Host}\" is rate limiting requests for {subject}: {detail}"),
            >= HttpStatusCode.InternalServerError => (ErrorKind.Unavailable, $"registry \"{host.Host}\" failed on {subject}: {detail}"),
            HttpStatusCode.BadRequest => (ErrorKind.InvalidArgument, $"registry \"{host.Host}\" rejected the request for {subject}: {detail}"),
            _ => (ErrorKind.FailedPrecondition, $"registry \"{host.Host}\" refused the request for {subject}: {detail}"),
        };
        return new RegistryException(kind, message, host.Host, response.StatusCode, errors);
    }

    /// <summary><c>401 Unauthorized: UNAUTHORIZED: authentication required</c>.</summary>
    public static string Describe(HttpResponseMessage response, IReadOnlyList<RegistryError> errors)
    {
        string status = $"{(int)response.StatusCode} {response.ReasonPhrase ?? response.StatusCode.ToString()}";
        return errors.Count == 0 ? status : $"{status}: {string.Join("; ", errors)}";
    }

    private static async Task<IReadOnlyList<RegistryError>> ReadErrorsAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            await using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            byte[] buffer = new byte[MaxErrorBody];
            int total = 0, n;
            while (total < buffer.Length && (n = await body.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false)) > 0) total += n;
            return RegistryError.Parse(buffer.AsSpan(0, total));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return [];
        }
    }
}
