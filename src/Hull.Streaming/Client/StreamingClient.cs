using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Hull.Streaming.Spdy;

namespace Hull.Streaming.Client;

/// <summary>The server refused the upgrade (404 unknown token, 403 no common protocol, ...).</summary>
public sealed class StreamingUpgradeException(int statusCode, IReadOnlyDictionary<string, List<string>> headers, string body)
    : Exception($"streaming upgrade failed with HTTP {statusCode}: {body.Trim()}")
{
    public int StatusCode { get; } = statusCode;
    public IReadOnlyDictionary<string, List<string>> Headers { get; } = headers;
    public string Body { get; } = body;
}

/// <summary>A SPDY/3.1 session on an upgraded connection and the protocol the server chose.</summary>
public sealed class SpdyClientConnection(SpdySession session, string protocol) : IAsyncDisposable
{
    public SpdySession Session { get; } = session;
    public string Protocol { get; } = protocol;
    public ValueTask DisposeAsync() => Session.DisposeAsync();
}

public sealed record RemoteCommandOptions(bool Stdin, bool Stdout, bool Stderr, bool Tty);

/// <summary>Hull's client side of the Kubernetes streaming protocols (for hullctl exec/attach/port-forward and tests).</summary>
public static class StreamingClient
{
    /// <summary>HTTP/1.1 upgrade to SPDY/3.1 with X-Stream-Protocol-Version negotiation.</summary>
    public static async Task<SpdyClientConnection> ConnectSpdyAsync(Uri url, IReadOnlyList<string> protocols, CancellationToken ct = default, string method = "POST")
    {
        var headers = new List<(string, string)> { ("Connection", "Upgrade"), ("Upgrade", StreamProtocols.SpdyUpgrade) };
        headers.AddRange(protocols.Select(p => (StreamProtocols.HeaderProtocolVersion, p)));
        var (stream, response) = await UpgradeAsync(url, method, headers, ct).ConfigureAwait(false);
        string chosen = response.TryGetValue(StreamProtocols.HeaderProtocolVersion, out var v) ? v[0] : "";
        var session = new SpdySession(stream, isServer: false);
        session.Start();
        return new SpdyClientConnection(session, chosen);
    }

    /// <summary>
    /// A SPDY session tunnelled through a WebSocket, as kubectl 1.31+ port-forwards: each SPDY protocol is offered as
    /// the subprotocol <c>SPDY/3.1+</c>protocol; the connection's <see cref="SpdyClientConnection.Protocol"/> is the
    /// SPDY protocol the server chose. The WebSocket handshake is done here because ClientWebSocket refuses those
    /// subprotocol names ('/' is no token character in RFC 6455), which Kubernetes uses all the same.
    /// </summary>
    public static async Task<SpdyClientConnection> ConnectSpdyOverWebSocketAsync(Uri url, IReadOnlyList<string> protocols, CancellationToken ct = default)
    {
        var offered = protocols.Select(p => StreamProtocols.SpdyTunnelPrefix + p).ToList();
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var (stream, response) = await UpgradeAsync(url, "GET",
            [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Protocol", string.Join(", ", offered))], ct).ConfigureAwait(false);
        try
        {
            if (!response.TryGetValue("Sec-WebSocket-Accept", out var accept) || accept[0] != StreamProtocols.WebSocketAccept(key))
                throw new IOException("the WebSocket handshake answer has a wrong or no Sec-WebSocket-Accept");
            string chosen = response.TryGetValue("Sec-WebSocket-Protocol", out var p) ? p[0] : "";
            if (!offered.Contains(chosen, StringComparer.Ordinal))
                throw new IOException($"the server chose WebSocket subprotocol \"{chosen}\", not one of [{string.Join(" ", offered)}]");
            var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.FromSeconds(30) });
            var session = new SpdySession(new WebSocketTunnelStream(socket), isServer: false);
            session.Start();
            return new SpdyClientConnection(session, chosen[StreamProtocols.SpdyTunnelPrefix.Length..]);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Connects (TLS for https, any certificate: streaming URLs carry a single-use token, as kubelet's own client does
    /// with its self-signed server), sends an HTTP/1.1 upgrade request and returns the upgraded connection and the
    /// response headers; any other answer is a <see cref="StreamingUpgradeException"/>.
    /// </summary>
    private static async Task<(Stream Stream, Dictionary<string, List<string>> Headers)> UpgradeAsync(Uri url, string method, IEnumerable<(string Name, string Value)> headers,
        CancellationToken ct)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(url.Host, url.Port, ct).ConfigureAwait(false);
        Stream stream = tcp.GetStream();
        try
        {
            if (url.Scheme == "https")
            {
                var ssl = new SslStream(stream, false, (_, _, _, _) => true);
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = url.Host }, ct).ConfigureAwait(false);
                stream = ssl;
            }
            var req = new StringBuilder();
            req.Append(method).Append(' ').Append(url.PathAndQuery).Append(" HTTP/1.1\r\n");
            req.Append("Host: ").Append(url.Authority).Append("\r\n");
            foreach (var (name, value) in headers) req.Append(name).Append(": ").Append(value).Append("\r\n");
            if (method != "GET") req.Append("Content-Length: 0\r\n");
            req.Append("\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(req.ToString()), ct).ConfigureAwait(false);
            var (status, response) = await ReadResponseHeadAsync(stream, ct).ConfigureAwait(false);
            if (status != 101)
            {
                string body = await ReadBodyAsync(stream, response, ct).ConfigureAwait(false);
                throw new StreamingUpgradeException(status, response, body);
            }
            return (stream, response);
        }
        catch
        {
            stream.Dispose();
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs a remote command over SPDY: opens the error, stdin, stdout, stderr and resize streams
    /// (as kubectl does), copies data until the server ends the session and returns the exit code.
    /// </summary>
    public static async Task<int> RunSpdyAsync(SpdyClientConnection conn, RemoteCommandOptions o, Stream? stdin, Stream? stdout, Stream? stderr,
        IAsyncEnumerable<TerminalSize>? resizes = null, CancellationToken ct = default)
    {
        var s = conn.Session;
        async Task<SpdyStream> Open(string type) => await s.OpenStreamAsync(new SpdyHeaders { { StreamProtocols.HeaderStreamType, type } }, false, ct).ConfigureAwait(false);
        var error = await Open(StreamProtocols.StreamTypeError).ConfigureAwait(false);
        await error.CloseWriteAsync().ConfigureAwait(false);
        var stdinS = o.Stdin ? await Open(StreamProtocols.StreamTypeStdin).ConfigureAwait(false) : null;
        var stdoutS = o.Stdout ? await Open(StreamProtocols.StreamTypeStdout).ConfigureAwait(false) : null;
        var stderrS = o.Stderr && !o.Tty ? await Open(StreamProtocols.StreamTypeStderr).ConfigureAwait(false) : null;
        var resizeS = o.Tty && conn.Protocol is StreamProtocols.RemoteCommandV3 or StreamProtocols.RemoteCommandV4 ? await Open(StreamProtocols.StreamTypeResize).ConfigureAwait(false) : null;

        var copies = new List<Task>();
        if (stdinS != null)
            _ = Task.Run(async () =>
            {
                try { if (stdin != null) await stdin.CopyToAsync(stdinS, ct).ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or OperationCanceledException) { }
                await stdinS.CloseWriteAsync().ConfigureAwait(false);
            }, CancellationToken.None);
        if (stdoutS != null) copies.Add(CopyOut(stdoutS, stdout, ct));
        if (stderrS != null) copies.Add(CopyOut(stderrS, stderr, ct));
        if (resizeS != null && resizes != null)
            _ = Task.Run(async () =>
            {
                try { await foreach (var size in resizes.WithCancellation(ct).ConfigureAwait(false)) await resizeS.WriteAsync(StreamStatus.ResizeJson(size), ct).ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or OperationCanceledException) { }
            }, CancellationToken.None);
        var errorBytes = new MemoryStream();
        await error.CopyToAsync(errorBytes, ct).ConfigureAwait(false);
        await Task.WhenAll(copies).ConfigureAwait(false);
        var bytes = errorBytes.ToArray();
        if (StreamProtocols.StatusIsJson(conn.Protocol)) return StreamStatus.ParseExitCode(bytes);
        if (bytes.Length == 0) return 0;
        throw new RemoteCommandException(Encoding.UTF8.GetString(bytes));
    }

    private static async Task CopyOut(Stream from, Stream? to, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            int n = await from.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (n == 0) return;
            if (to != null) { await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false); await to.FlushAsync(ct).ConfigureAwait(false); }
        }
    }

    /// <summary>Opens one port-forward connection over SPDY: returns the data stream and a task with the error stream's text.</summary>
    public static async Task<(SpdyStream Data, Task<string> Error)> OpenSpdyPortForwardAsync(SpdyClientConnection conn, int port, int requestId, CancellationToken ct = default)
    {
        var p = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var r = requestId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var error = await conn.Session.OpenStreamAsync(new SpdyHeaders { { StreamProtocols.HeaderStreamType, StreamProtocols.StreamTypeError }, { StreamProtocols.HeaderPort, p }, { StreamProtocols.HeaderRequestId, r } }, false, ct).ConfigureAwait(false);
        await error.CloseWriteAsync().ConfigureAwait(false);
        var data = await conn.Session.OpenStreamAsync(new SpdyHeaders { { StreamProtocols.HeaderStreamType, StreamProtocols.StreamTypeData }, { StreamProtocols.HeaderPort, p }, { StreamProtocols.HeaderRequestId, r } }, false, ct).ConfigureAwait(false);
        return (data, ReadAllText(error, ct));
    }

    private static async Task<string> ReadAllText(Stream s, CancellationToken ct)
    {
        var ms = new MemoryStream();
        try { await s.CopyToAsync(ms, ct).ConfigureAwait(false); } catch (IOException) { }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Connects a WebSocket with the given subprotocols and wraps it in the channel framing.</summary>
    public static async Task<WebSocketChannelConnection> ConnectWebSocketAsync(Uri url, IReadOnlyList<string> protocols, int channels, CancellationToken ct = default)
    {
        var ws = await OpenWebSocketAsync(url, protocols, ct).ConfigureAwait(false);
        return new WebSocketChannelConnection(ws, ws.SubProtocol ?? "", channels);
    }

    /// <summary>A WebSocket with one of <paramref name="protocols"/>; a refused upgrade is a <see cref="StreamingUpgradeException"/>.</summary>
    private static async Task<ClientWebSocket> OpenWebSocketAsync(Uri url, IReadOnlyList<string> protocols, CancellationToken ct)
    {
        var ws = new ClientWebSocket();
        foreach (var p in protocols) ws.Options.AddSubProtocol(p);
        ws.Options.CollectHttpResponseDetails = true;
        var wsUrl = new UriBuilder(url) { Scheme = url.Scheme == "https" ? "wss" : "ws" }.Uri;
        try { await ws.ConnectAsync(wsUrl, ct).ConfigureAwait(false); }
        catch (WebSocketException) when (ws.HttpStatusCode != System.Net.HttpStatusCode.SwitchingProtocols && ws.HttpStatusCode != 0)
        {
            int status = (int)ws.HttpStatusCode;
            var headers = (ws.HttpResponseHeaders ?? new Dictionary<string, IEnumerable<string>>())
                .ToDictionary(kv => kv.Key, kv => kv.Value.ToList(), StringComparer.OrdinalIgnoreCase);
            ws.Dispose();
            throw new StreamingUpgradeException(status, headers, "");
        }
        catch
        {
            ws.Dispose();
            throw;
        }
        return ws;
    }

    /// <summary>Runs a remote command over a WebSocket channel connection and returns the exit code.</summary>
    public static async Task<int> RunWebSocketAsync(WebSocketChannelConnection conn, RemoteCommandOptions o, Stream? stdin, Stream? stdout, Stream? stderr,
        IAsyncEnumerable<TerminalSize>? resizes = null, CancellationToken ct = default)
    {
        var loop = conn.RunAsync(ct);
        var ch = conn.Channels;
        if (o.Stdin)
            _ = Task.Run(async () =>
            {
                try
                {
                    if (stdin != null) await stdin.CopyToAsync(ch[StreamProtocols.ChannelStdin], ct).ConfigureAwait(false);
                    await conn.SendCloseSignalAsync(StreamProtocols.ChannelStdin, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or WebSocketException) { }
            }, CancellationToken.None);
        if (o.Tty && resizes != null)
            _ = Task.Run(async () =>
            {
                try { await foreach (var size in resizes.WithCancellation(ct).ConfigureAwait(false)) await ch[StreamProtocols.ChannelResize].WriteAsync(StreamStatus.ResizeJson(size), ct).ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or OperationCanceledException or WebSocketException) { }
            }, CancellationToken.None);
        var outs = new[] { CopyOut(ch[StreamProtocols.ChannelStdout], stdout, ct), CopyOut(ch[StreamProtocols.ChannelStderr], stderr, ct) };
        var errorBytes = new MemoryStream();
        await ch[StreamProtocols.ChannelError].CopyToAsync(errorBytes, ct).ConfigureAwait(false);
        await Task.WhenAll(outs).ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        var bytes = errorBytes.ToArray();
        if (StreamProtocols.StatusIsJson(conn.Protocol)) return StreamStatus.ParseExitCode(bytes);
        if (bytes.Length == 0) return 0;
        throw new RemoteCommandException(Encoding.UTF8.GetString(bytes));
    }

    private static async Task<(int Status, Dictionary<string, List<string>> Headers)> ReadResponseHeadAsync(Stream s, CancellationToken ct)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await s.ReadAsync(one, ct).ConfigureAwait(false) == 0) throw new IOException("connection closed during the HTTP upgrade");
            head.Add(one[0]);
            if (head.Count > 64 * 1024) throw new IOException("HTTP response head too large");
        }
        var lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var statusParts = lines[0].Split(' ', 3);
        if (statusParts.Length < 2 || !int.TryParse(statusParts[1], out int status)) throw new IOException($"bad HTTP status line \"{lines[0]}\"");
        var headers = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var name = line[..colon].Trim();
            if (!headers.TryGetValue(name, out var list)) headers[name] = list = new List<string>();
            list.AddRange(StreamProtocols.SplitList([line[(colon + 1)..]]));
        }
        return (status, headers);
    }

    private static async Task<string> ReadBodyAsync(Stream s, Dictionary<string, List<string>> headers, CancellationToken ct)
    {
        var ms = new MemoryStream();
        var buffer = new byte[4096];
        if (headers.TryGetValue("Content-Length", out var cl) && int.TryParse(cl[0], out int length))
        {
            while (ms.Length < length)
            {
                int n = await s.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - ms.Length)), ct).ConfigureAwait(false);
                if (n == 0) break;
                ms.Write(buffer, 0, n);
            }
        }
        else if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparer.OrdinalIgnoreCase))
        {
            // Small error bodies only: read chunks until the terminating 0-length chunk.
            while (true)
            {
                var sizeLine = await ReadLineAsync(s, ct).ConfigureAwait(false);
                int size = Convert.ToInt32(sizeLine.Split(';')[0].Trim(), 16);
                if (size == 0) break;
                var chunk = new byte[size + 2];
                int read = 0;
                while (read < chunk.Length) { int n = await s.ReadAsync(chunk.AsMemory(read), ct).ConfigureAwait(false); if (n == 0) break; read += n; }
                ms.Write(chunk, 0, size);
            }
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static async Task<string> ReadLineAsync(Stream s, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (await s.ReadAsync(one, ct).ConfigureAwait(false) == 1)
        {
            if (one[0] == '\n') break;
            if (one[0] != '\r') sb.Append((char)one[0]);
        }
        return sb.ToString();
    }
}
