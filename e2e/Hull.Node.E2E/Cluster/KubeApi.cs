using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Text;
using System.Text.Json.Nodes;

namespace Hull.Node.E2E.Cluster;

/// <summary>
/// A small JSON client of the API server with a client certificate, for what the tests read often (pod lists while
/// waiting, node status) without starting a kubectl process each time. Mutations a user would make go through kubectl.
/// </summary>
public sealed class KubeApi : IDisposable
{
    private readonly HttpClient _http;

    public KubeApi(Uri server, ClusterPki pki, PemPair client)
    {
        Server = server;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [client.Load()],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => pki.Verify(certificate),
            },
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        _http = new HttpClient(handler) { BaseAddress = server, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri Server { get; }

    /// <summary>GET a JSON object; null when it does not exist (404).</summary>
    public async Task<JsonNode?> GetAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync(path, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"GET {path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body);
    }

    /// <summary>GET a text resource (e.g. /readyz, a kubelet's /metrics/resource through the node proxy).</summary>
    public async Task<(HttpStatusCode Status, string Body)> GetTextAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync(path, cancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
    }

    public async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonNode? body, string contentType = "application/json",
        CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        }
        using var response = await _http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{method} {path}: {(int)response.StatusCode} {text}", null, response.StatusCode);
        return text.Length == 0 ? null : JsonNode.Parse(text);
    }

    /// <summary>The items of a list (pods, nodes, events ...).</summary>
    public async Task<List<JsonNode>> ListAsync(string path, CancellationToken cancellationToken = default) =>
        (await GetAsync(path, cancellationToken))?["items"]?.AsArray().Where(i => i is not null).Select(i => i!).ToList() ?? [];

    /// <summary>
    /// Watches <paramref name="path"/> (a list URL, e.g. with a fieldSelector) from its current state: one (type, object)
    /// per event, ADDED for what exists at the start, until the caller stops or the token is cancelled.
    /// </summary>
    public async IAsyncEnumerable<(string Type, JsonNode Object)> WatchAsync(string path,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var separator = path.Contains('?') ? '&' : '?';
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{path}{separator}watch=1&allowWatchBookmarks=false");
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0) continue;
            var e = JsonNode.Parse(line)!;
            yield return ((string)e["type"]!, e["object"]!);
        }
    }

    public void Dispose() => _http.Dispose();
}
