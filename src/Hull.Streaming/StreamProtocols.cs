using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace Hull.Streaming;

/// <summary>The Kubernetes streaming protocol names, header names and stream types (k8s.io/apimachinery httpstream, kubelet remotecommand and portforward).</summary>
public static class StreamProtocols
{
    public const string HeaderProtocolVersion = "X-Stream-Protocol-Version";
    public const string HeaderAcceptedProtocolVersions = "X-Accepted-Stream-Protocol-Versions";
    public const string SpdyUpgrade = "SPDY/3.1";

    public const string RemoteCommandV1 = "channel.k8s.io";
    public const string RemoteCommandV2 = "v2.channel.k8s.io";
    public const string RemoteCommandV3 = "v3.channel.k8s.io";
    public const string RemoteCommandV4 = "v4.channel.k8s.io";
    public const string RemoteCommandV5 = "v5.channel.k8s.io";
    public const string PortForwardV1 = "portforward.k8s.io";

    /// <summary>SPDY remote command protocols Hull accepts, most preferred first.</summary>
    public static readonly string[] SpdyRemoteCommand = [RemoteCommandV4, RemoteCommandV3, RemoteCommandV2, RemoteCommandV1];
    public static readonly string[] SpdyPortForward = [PortForwardV1];

    public const string WebSocketBase64V1 = "base64.channel.k8s.io";
    public const string WebSocketBase64V4 = "v4.base64.channel.k8s.io";
    /// <summary>WebSocket subprotocols for exec/attach; "" (no subprotocol) means binary channel.k8s.io.</summary>
    public static readonly string[] WebSocketRemoteCommand = [RemoteCommandV5, RemoteCommandV4, WebSocketBase64V4, RemoteCommandV1, WebSocketBase64V1];
    /// <summary>
    /// WebSocket subprotocols for port-forward: the channel protocols (kubelet's portforward/websocket.go), and SPDY
    /// tunnelled in binary messages (<see cref="WebSocketSpdyPortForward"/>).
    /// </summary>
    public static readonly string[] WebSocketPortForward = [WebSocketSpdyPortForward, RemoteCommandV4, WebSocketBase64V4, PortForwardV1, RemoteCommandV1, WebSocketBase64V1];

    /// <summary>k8s.io/apimachinery/pkg/util/portforward: a SPDY protocol name behind this prefix means "SPDY, tunnelled through the WebSocket".</summary>
    public const string SpdyTunnelPrefix = "SPDY/3.1+";
    public const string WebSocketSpdyPortForward = SpdyTunnelPrefix + PortForwardV1;

    public const string HeaderStreamType = "streamType";
    public const string HeaderPort = "port";
    public const string HeaderRequestId = "requestID";
    public const string StreamTypeStdin = "stdin";
    public const string StreamTypeStdout = "stdout";
    public const string StreamTypeStderr = "stderr";
    public const string StreamTypeError = "error";
    public const string StreamTypeResize = "resize";
    public const string StreamTypeData = "data";

    public const int ChannelStdin = 0, ChannelStdout = 1, ChannelStderr = 2, ChannelError = 3, ChannelResize = 4;
    /// <summary>v5.channel.k8s.io: a message [255, channel] half-closes that channel.</summary>
    public const byte ChannelClose = 255;

    public const string NonZeroExitCodeReason = "NonZeroExitCode";
    public const string ExitCodeCauseType = "ExitCode";

    public static bool IsBase64(string protocol) => protocol is WebSocketBase64V1 or WebSocketBase64V4;
    public static bool SupportsResize(string protocol) => protocol is RemoteCommandV3 or RemoteCommandV4 or RemoteCommandV5 or WebSocketBase64V4 or RemoteCommandV1 or WebSocketBase64V1 or "";
    public static bool StatusIsJson(string protocol) => protocol is RemoteCommandV4 or RemoteCommandV5 or WebSocketBase64V4;

    /// <summary>The first client protocol (in client order) the server accepts, or null (httpstream.negotiateProtocol).</summary>
    public static string? Negotiate(IEnumerable<string> clientProtocols, IReadOnlyList<string> serverProtocols)
    {
        foreach (var c in clientProtocols)
            if (serverProtocols.Contains(c, StringComparer.Ordinal)) return c;
        return null;
    }

    /// <summary>The Sec-WebSocket-Accept answer to a Sec-WebSocket-Key (RFC 6455 section 4.2.2).</summary>
    public static string WebSocketAccept(string key) =>
        Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    /// <summary>Splits header values that may each hold a comma-separated list.</summary>
    public static List<string> SplitList(IEnumerable<string?> values) =>
        values.SelectMany(v => (v ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
}

/// <summary>The metav1.Status documents written on the error stream.</summary>
public static class StreamStatus
{
    public static byte[] Success() => """{"metadata":{},"status":"Success"}"""u8.ToArray();

    public static byte[] NonZeroExit(int exitCode, IReadOnlyList<string> command) => Write(w =>
    {
        w.WriteString("status", "Failure");
        w.WriteString("message", $"command terminated with non-zero exit code: command '{string.Join(' ', command)}' exited with {exitCode}");
        w.WriteString("reason", StreamProtocols.NonZeroExitCodeReason);
        w.WriteStartObject("details");
        w.WriteStartArray("causes");
        w.WriteStartObject();
        w.WriteString("reason", StreamProtocols.ExitCodeCauseType);
        w.WriteString("message", exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static byte[] InternalError(string message) => Write(w =>
    {
        w.WriteString("status", "Failure");
        w.WriteString("message", $"Internal error occurred: {message}");
        w.WriteString("reason", "InternalError");
        w.WriteStartObject("details");
        w.WriteStartArray("causes");
        w.WriteStartObject();
        w.WriteString("message", message);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNumber("code", 500);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteEndObject();
            body(w);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>
    /// What goes on the error stream for a finished session: v4/v5 always write the Status JSON,
    /// older protocols write only a failure's message as text.
    /// </summary>
    public static byte[] ForProtocol(string protocol, byte[] statusJson)
    {
        if (StreamProtocols.StatusIsJson(protocol)) return statusJson;
        using var doc = JsonDocument.Parse(statusJson);
        if (doc.RootElement.GetProperty("status").GetString() == "Success") return [];
        return Encoding.UTF8.GetBytes(doc.RootElement.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "error");
    }

    /// <summary>
    /// Reads a finished session's error stream: empty or Success → 0; NonZeroExitCode → its ExitCode
    /// cause; anything else throws <see cref="RemoteCommandException"/> with the message.
    /// </summary>
    public static int ParseExitCode(ReadOnlySpan<byte> errorStream)
    {
        if (errorStream.Trim((byte)' ').IsEmpty) return 0;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(errorStream.ToArray()); }
        catch (JsonException) { throw new RemoteCommandException(Encoding.UTF8.GetString(errorStream)); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.TryGetProperty("status", out var st) && st.GetString() == "Success") return 0;
            string message = root.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "";
            if (root.TryGetProperty("reason", out var r) && r.GetString() == StreamProtocols.NonZeroExitCodeReason
                && root.TryGetProperty("details", out var d) && d.TryGetProperty("causes", out var causes))
                foreach (var c in causes.EnumerateArray())
                    if (c.TryGetProperty("reason", out var cr) && cr.GetString() == StreamProtocols.ExitCodeCauseType
                        && int.TryParse(c.GetProperty("message").GetString(), out int code))
                        return code;
            throw new RemoteCommandException(message);
        }
    }

    /// <summary>Decodes the resize stream: a sequence of <c>{"Width":..,"Height":..}</c> objects.</summary>
    public static async IAsyncEnumerable<TerminalSize> ReadResizeEvents(Stream? stream, [EnumeratorCancellation] CancellationToken ct = default)
    {
        if (stream == null) yield break;
        var pending = new List<byte>();
        var buffer = new byte[1024];
        int depth = 0;
        while (true)
        {
            int n;
            try { n = await stream.ReadAsync(buffer, ct).ConfigureAwait(false); }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { yield break; }
            if (n == 0) yield break;
            for (int i = 0; i < n; i++)
            {
                byte b = buffer[i];
                if (depth == 0 && b != '{') continue;
                pending.Add(b);
                if (b == '{') depth++;
                else if (b == '}' && --depth == 0)
                {
                    TerminalSize? size = null;
                    try
                    {
                        using var doc = JsonDocument.Parse(pending.ToArray());
                        var root = doc.RootElement;
                        ushort w = root.TryGetProperty("Width", out var wv) ? wv.GetUInt16() : (ushort)0;
                        ushort h = root.TryGetProperty("Height", out var hv) ? hv.GetUInt16() : (ushort)0;
                        size = new TerminalSize(w, h);
                    }
                    catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException) { }
                    pending.Clear();
                    if (size is { } s) yield return s;
                }
            }
        }
    }

    public static byte[] ResizeJson(TerminalSize size) => Encoding.UTF8.GetBytes($"{{\"Width\":{size.Width},\"Height\":{size.Height}}}");
}

/// <summary>The remote command failed for a reason other than a non-zero exit (the Status message).</summary>
public sealed class RemoteCommandException(string message) : Exception(message);
