using System.Collections.Concurrent;
using System.Net;
using Hull.Core;
using Microsoft.Extensions.Logging;

namespace Hull.Images.Registry;

/// <summary>One request to one registry host. <see cref="Content"/> is called per attempt so retries resend the body.</summary>
internal sealed record RegistryRequest(AuthScope Auth, HttpMethod Method, string Url)
{
    public Action<HttpRequestMessage>? Configure { get; init; }

    public Func<HttpContent>? Content { get; init; }

    /// <summary>False when the body cannot be sent twice.</summary>
    public bool Retryable { get; init; } = true;

    public RegistryHost Host => Auth.Host;
}

/// <summary>
/// Sends registry requests: picks the host's HttpClient, applies headers and authorization, retries transient
/// failures, re-authenticates once on 401, and falls back from HTTPS to HTTP where containerd would.
/// </summary>
internal sealed class RegistryTransport : IDisposable
{
    private readonly RegistryHttpClients _clients;
    private readonly RegistryRetry _retry;
    private readonly RegistryAuthenticator _authenticator;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, bool> _plainHttpHosts = new(StringComparer.Ordinal);

    public RegistryTransport(RegistryClientOptions options)
    {
        _clients = new RegistryHttpClients(options);
        _retry = new RegistryRetry(options);
        _authenticator = new RegistryAuthenticator(_retry, options);
        _logger = options.Logger;
    }

    public void Dispose() => _clients.Dispose();

    /// <summary>The base URL actually in use for <paramref name="host"/> (http once a fallback happened).</summary>
    public string BaseUrl(RegistryHost host) =>
        host.HttpFallback && _plainHttpHosts.ContainsKey(host.Host) ? $"http://{host.Host}{host.Path}" : host.BaseUrl;

    /// <summary>
    /// Sends the request and returns the final response, whatever its status (callers map errors).
    /// Network failures that outlast the retries become Unavailable.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(RegistryRequest spec, CancellationToken ct)
    {
        HttpClient client = _clients.For(spec.Host);
        try
        {
            if (!spec.Retryable) return await AttemptAsync(spec, client, ct).ConfigureAwait(false);
            return await _retry.ExecuteAsync(token => new ValueTask<HttpResponseMessage>(AttemptAsync(spec, client, token)), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            // HttpClient reports its own timeouts (ConnectTimeout from dial_timeout) as a cancellation.
            string reason = e is OperationCanceledException ? $"timed out ({e.InnerException?.Message ?? "no answer"})" : e.Message;
            throw new RegistryException(ErrorKind.Unavailable, $"cannot reach registry \"{spec.Host.Host}\": {reason}", spec.Host.Host, inner: e);
        }
    }

    private async Task<HttpResponseMessage> AttemptAsync(RegistryRequest spec, HttpClient client, CancellationToken ct)
    {
        bool reauthenticated = false;
        while (true)
        {
            using HttpRequestMessage request = Build(spec);
            await _authenticator.ApplyAsync(request, spec.Auth, client, ct).ConfigureAwait(false);

            HttpResponseMessage response;
            try
            {
                response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (ShouldFallBackToHttp(spec.Host, request, e))
            {
                _logger.LogInformation("registry host {Host} does not speak TLS; using plain HTTP", spec.Host.Host);
                _plainHttpHosts[spec.Host.Host] = true;
                continue;
            }

            if (response.StatusCode == HttpStatusCode.Unauthorized && !reauthenticated && _authenticator.HandleUnauthorized(response, spec.Auth))
            {
                reauthenticated = true;
                response.Dispose();
                continue;
            }
            return response;
        }
    }

    private HttpRequestMessage Build(RegistryRequest spec)
    {
        string url = spec.Url;
        if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            url = BaseUrl(spec.Host) + url;
        else if (spec.Host.HttpFallback && _plainHttpHosts.ContainsKey(spec.Host.Host) && url.StartsWith("https://" + spec.Host.Host + "/", StringComparison.OrdinalIgnoreCase))
            url = "http://" + url["https://".Length..];

        var request = new HttpRequestMessage(spec.Method, url);
        RegistryAuthenticator.AddHostHeaders(request, spec.Host);
        spec.Configure?.Invoke(request);
        if (spec.Content is not null) request.Content = spec.Content();
        return request;
    }

    // containerd's HTTPFallback: a TLS failure (the server answered in plain HTTP) or, without a port,
    // a refused connection on 443.
    private bool ShouldFallBackToHttp(RegistryHost host, HttpRequestMessage request, HttpRequestException e) =>
        host.HttpFallback
        && request.RequestUri?.Scheme == Uri.UriSchemeHttps
        && !_plainHttpHosts.ContainsKey(host.Host)
        && (e.HttpRequestError == HttpRequestError.SecureConnectionError
            || (e.HttpRequestError == HttpRequestError.ConnectionError && RegistryHosts.Port(host.Host).Length == 0));
}
