using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Hull.E2E.Fixtures;

/// <summary>How <see cref="FaultyRegistryProxy"/> mistreats a request it picked.</summary>
public enum RegistryFault
{
    /// <summary>Pass the request through unchanged.</summary>
    None,
    /// <summary>Answer <see cref="FaultyRegistryProxy.StatusCode"/> (503 unless set) without asking the registry.</summary>
    ServerError,
    /// <summary>Read the request and never answer, until the proxy is disposed.</summary>
    Hang,
    /// <summary>Reset the connection (RST) without any response.</summary>
    Reset,
    /// <summary>Forward; send the full Content-Length but only <see cref="FaultyRegistryProxy.TruncateAt"/> bytes (half unless set), then close.</summary>
    Truncate,
    /// <summary>Forward with one body byte in the middle flipped: same length, wrong digest.</summary>
    Corrupt,
    /// <summary>Forward the body at <see cref="FaultyRegistryProxy.BytesPerSecond"/>.</summary>
    Slow,
}

/// <summary>One request the proxy saw, and what it did to it.</summary>
public sealed record ProxiedRequest(string Method, string Path, RegistryFault Fault = RegistryFault.None)
{
    public bool IsBlob => Path.Contains("/blobs/", StringComparison.Ordinal);
    public bool IsManifest => Path.Contains("/manifests/", StringComparison.Ordinal);
}


/// <summary>
/// A plain-HTTP/1.1 proxy on 127.0.0.1 in front of a registry that can make it misbehave: 5xx,
/// hangs, resets, truncated, corrupted or slow bodies, for the requests a predicate picks (by
/// default blob GETs), always or only the next N times. Clients use <see cref="Host"/> as the
/// registry host; the registry sees the proxy's Host header, so its Location headers point back
/// at the proxy. Every request is recorded in <see cref="Requests"/>. It speaks HTTP on raw
/// sockets (not HttpListener) so that a reset is a real RST and a truncated body a real short read.
/// </summary>
public sealed class FaultyRegistryProxy : IAsyncDisposable, IDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "TE", "Trailer", "Upgrade",
        "Host", "Content-Length", "Expect",
    };

    /// <summary>Blob downloads: the default target of a fault.</summary>
    public static readonly Func<ProxiedRequest, bool> BlobGets = r => r.Method == "GET" && r.IsBlob;
    public static readonly Func<ProxiedRequest, bool> ManifestRequests = r => r.IsManifest;
    public static readonly Func<ProxiedRequest, bool> AllRequests = _ => true;

    private readonly TcpListener _listener;
    private readonly Uri _upstream;
    private readonly HttpClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<ProxiedRequest> _requests = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private readonly Lock _gate = new();
    private readonly Task _serving;
    private RegistryFault _fault;
    private Func<ProxiedRequest, bool> _when = BlobGets;
    private int? _remaining;
    private int _injected;

    private FaultyRegistryProxy(string upstreamHost)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _upstream = new Uri($"http://{upstreamHost}/");
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        _serving = Task.Run(ServeAsync);
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <summary>The status <see cref="RegistryFault.ServerError"/> answers with.</summary>
    public int StatusCode { get; set; } = 503;
    /// <summary>How many body bytes <see cref="RegistryFault.Truncate"/> sends; null = half.</summary>
    public long? TruncateAt { get; set; }
    public int BytesPerSecond { get; set; } = 64 * 1024;

    public IReadOnlyList<ProxiedRequest> Requests => [.. _requests];
    /// <summary>How many requests a fault was applied to.</summary>
    public int FaultsInjected => Volatile.Read(ref _injected);

    public static FaultyRegistryProxy Start(RegistryProcess registry) => new(registry.Host);
    public static FaultyRegistryProxy Start(string upstreamHost) => new(upstreamHost);

    /// <summary>From now on apply <paramref name="fault"/> to the requests <paramref name="when"/> picks (blob GETs by default), <paramref name="times"/> times or always.</summary>
    public void Inject(RegistryFault fault, Func<ProxiedRequest, bool>? when = null, int? times = null)
    {
        lock (_gate)
        {
            _fault = fault;
            _when = when ?? BlobGets;
            _remaining = times;
        }
    }

    /// <summary>Back to passing everything through.</summary>
    public void Clear() => Inject(RegistryFault.None);

    private RegistryFault Decide(ProxiedRequest request)
    {
        lock (_gate)
        {
            if (_fault == RegistryFault.None || _remaining is <= 0 || !_when(request)) return RegistryFault.None;
            if (_remaining is { } n) _remaining = n - 1;
            _injected++;
            return _fault;
        }
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { return; }
            catch (ObjectDisposedException) { return; }
            _connections[socket] = 0;
            _ = Task.Run(async () =>
            {
                try
                {
                    await HandleConnectionAsync(socket);
                }
                catch (Exception)
                {
                    // The client went away, the upstream failed, or the proxy is stopping.
                }
                finally
                {
                    _connections.TryRemove(socket, out _);
                    socket.Dispose();
                }
            });
        }
    }

    private sealed record Head(string Method, string Target, List<KeyValuePair<string, string>> Headers)
    {
        public string? this[string name] => Headers.LastOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;
    }

    private async Task HandleConnectionAsync(Socket socket)
    {
        await using var network = new NetworkStream(socket, ownsSocket: false);
        // Reads go through a buffer; writes go straight to the socket.
        await using var input = new BufferedStream(network, 64 * 1024);
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            var head = await ReadHeadAsync(input, token);
            if (head is null) return;
            var body = await ReadBodyAsync(input, head, token);
            var path = head.Target.Split('?', 2)[0];
            var seen = new ProxiedRequest(head.Method, path);
            var fault = Decide(seen);
            _requests.Enqueue(seen with { Fault = fault });
            switch (fault)
            {
                case RegistryFault.Reset:
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close();
                    return;
                case RegistryFault.Hang:
                    await Task.Delay(Timeout.Infinite, token);
                    return;
                case RegistryFault.ServerError:
                    var error = Encoding.UTF8.GetBytes($$"""{"errors":[{"code":"UNAVAILABLE","message":"injected {{StatusCode}} by FaultyRegistryProxy"}]}""");
                    await WriteHeadAsync(network, StatusCode, "Injected Fault",
                        [new("Content-Type", "application/json"), new("Content-Length", error.Length.ToString(CultureInfo.InvariantCulture))], token);
                    if (head.Method != "HEAD") await network.WriteAsync(error, token);
                    break;
                default:
                    if (!await ForwardAsync(network, head, body, fault, token)) return;
                    break;
            }
            if (string.Equals(head["Connection"], "close", StringComparison.OrdinalIgnoreCase)) return;
        }
    }

    private static async Task<Head?> ReadHeadAsync(Stream input, CancellationToken token)
    {
        string? requestLine;
        do
        {
            requestLine = await ReadLineAsync(input, token);
            if (requestLine is null) return null;
        } while (requestLine.Length == 0);
        var parts = requestLine.Split(' ');
        if (parts.Length != 3) throw new InvalidDataException($"bad request line: {requestLine}");
        var headers = new List<KeyValuePair<string, string>>();
        while (await ReadLineAsync(input, token) is { Length: > 0 } line)
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0) headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }
        return new Head(parts[0], parts[1], headers);
    }

    private static async Task<string?> ReadLineAsync(Stream input, CancellationToken token)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await input.ReadAsync(one, token) == 0) return line.Length == 0 ? null : throw new EndOfStreamException();
            // A TLS ClientHello (clients such as skopeo try HTTPS first): hang up at once so they
            // fall back to HTTP, rather than wait for a line end that may never come.
            if (line.Length == 0 && one[0] == 0x16) throw new InvalidDataException("TLS handshake on the plain-HTTP proxy");
            if (one[0] == '\n') return line.ToString().TrimEnd('\r');
            if (line.Length >= 64 * 1024) throw new InvalidDataException("header line too long");
            line.Append((char)one[0]);
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(Stream input, Head head, CancellationToken token)
    {
        if (string.Equals(head["Transfer-Encoding"], "chunked", StringComparison.OrdinalIgnoreCase))
        {
            var body = new MemoryStream();
            while (true)
            {
                var sizeLine = await ReadLineAsync(input, token) ?? throw new EndOfStreamException();
                int size = int.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    while (await ReadLineAsync(input, token) is { Length: > 0 }) { } // trailers
                    return body.ToArray();
                }
                var chunk = new byte[size];
                await input.ReadExactlyAsync(chunk, token);
                body.Write(chunk);
                await ReadLineAsync(input, token);
            }
        }
        if (head["Content-Length"] is { } length && long.Parse(length, CultureInfo.InvariantCulture) is > 0 and var n)
        {
            var body = new byte[n];
            await input.ReadExactlyAsync(body, token);
            return body;
        }
        return null;
    }

    private static async Task WriteHeadAsync(Stream output, int status, string reason, IEnumerable<KeyValuePair<string, string>> headers, CancellationToken token)
    {
        var text = new StringBuilder($"HTTP/1.1 {status} {reason}\r\n");
        foreach (var (name, value) in headers) text.Append(name).Append(": ").Append(value).Append("\r\n");
        text.Append("\r\n");
        await output.WriteAsync(Encoding.ASCII.GetBytes(text.ToString()), token);
    }

    /// <summary>Forwards one request; false when the connection must close afterwards.</summary>
    private async Task<bool> ForwardAsync(Stream output, Head head, byte[]? body, RegistryFault fault, CancellationToken token)
    {
        using var message = new HttpRequestMessage(new HttpMethod(head.Method), new Uri(_upstream, head.Target));
        if (body is not null) message.Content = new ByteArrayContent(body);
        foreach (var (name, value) in head.Headers)
        {
            if (HopByHop.Contains(name)) continue;
            if (!message.Headers.TryAddWithoutValidation(name, value))
                message.Content?.Headers.TryAddWithoutValidation(name, value);
        }
        // The registry builds Location URLs from Host: keep them pointing at the proxy.
        message.Headers.Host = head["Host"] ?? Host;

        using var upstream = await _client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, token);
        long? length = upstream.Content.Headers.ContentLength;
        bool noBody = head.Method == "HEAD" || upstream.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotModified;
        var headers = upstream.Headers.Concat(upstream.Content.Headers)
            .Where(h => !HopByHop.Contains(h.Key))
            .SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v))).ToList();
        bool keepAlive = length is not null || noBody;
        if (length is { } l) headers.Add(new("Content-Length", l.ToString(CultureInfo.InvariantCulture)));
        if (!keepAlive) headers.Add(new("Connection", "close"));
        await WriteHeadAsync(output, (int)upstream.StatusCode, upstream.ReasonPhrase ?? "", headers, token);
        if (noBody) return true;

        await using var content = await upstream.Content.ReadAsStreamAsync(token);
        long limit = fault == RegistryFault.Truncate ? TruncateAt ?? (length ?? 0) / 2 : long.MaxValue;
        long corruptAt = fault == RegistryFault.Corrupt ? (length ?? 1) / 2 : -1;
        var buffer = new byte[fault == RegistryFault.Slow ? Math.Max(1, BytesPerSecond / 10) : 64 * 1024];
        long sent = 0;
        while (sent < limit)
        {
            int read = await content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - sent)), token);
            if (read == 0) break;
            if (corruptAt >= sent && corruptAt < sent + read) buffer[corruptAt - sent] ^= 0xFF;
            await output.WriteAsync(buffer.AsMemory(0, read), token);
            sent += read;
            if (fault == RegistryFault.Slow) await Task.Delay(100, token);
        }
        // A truncated body ends with the connection: the client sees fewer bytes than Content-Length.
        return keepAlive && fault != RegistryFault.Truncate;
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Stop();
        foreach (var socket in _connections.Keys)
        {
            try { socket.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            socket.Dispose();
        }
        _client.Dispose();
        try { _serving.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
