using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;

namespace Hull.Streaming;

/// <summary>
/// The Kubernetes channel framing over a WebSocket (k8s.io/apimachinery wsstream): each message
/// starts with a channel byte; with a base64 protocol the message is text, the channel is the
/// ASCII digit and the rest is base64. v5.channel.k8s.io adds the close signal [255, channel].
/// Used by both the server and Hull's client.
/// </summary>
public sealed class WebSocketChannelConnection : IAsyncDisposable
{
    private readonly WebSocket _socket;
    private readonly Pipe[] _inbound;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();

    /// <param name="readable">
    /// The channels whose incoming messages are kept for reading (null: all). Messages on the others are dropped, as
    /// kubelet drops what a client sends on a write-only channel, so nothing can fill up where nobody reads.
    /// </param>
    public WebSocketChannelConnection(WebSocket socket, string protocol, int channels, IReadOnlyCollection<int>? readable = null)
    {
        _socket = socket;
        Protocol = protocol;
        Base64 = StreamProtocols.IsBase64(protocol);
        SupportsClose = protocol == StreamProtocols.RemoteCommandV5;
        _inbound = Enumerable.Range(0, channels).Select(_ => new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19, useSynchronizationContext: false))).ToArray();
        Channels = Enumerable.Range(0, channels).Select(i => new ChannelStream(this, i)).ToArray();
        if (readable != null)
            for (int i = 0; i < channels; i++)
                if (!readable.Contains(i)) Channels[i].StopReading();
    }

    public string Protocol { get; }
    public bool Base64 { get; }
    public bool SupportsClose { get; }
    public IReadOnlyList<ChannelStream> Channels { get; }

    /// <summary>Called for every message received or sent (the server's idle timer).</summary>
    public Action? Activity { get; set; }

    /// <summary>Fires when the socket is done (closed by either side or broken).</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Encodes one message for a channel (exposed for tests).</summary>
    public static (byte[] Message, WebSocketMessageType Type) Encode(int channel, ReadOnlySpan<byte> data, bool base64)
    {
        if (base64)
        {
            var text = (char)('0' + channel) + Convert.ToBase64String(data);
            return (Encoding.ASCII.GetBytes(text), WebSocketMessageType.Text);
        }
        var b = new byte[data.Length + 1];
        b[0] = (byte)channel;
        data.CopyTo(b.AsSpan(1));
        return (b, WebSocketMessageType.Binary);
    }

    /// <summary>Decodes one message into its channel and payload; null channel for a v5 close signal's target is returned via <paramref name="isClose"/>.</summary>
    public static (int Channel, byte[] Data) Decode(ReadOnlySpan<byte> message, bool base64, bool supportsClose, out bool isClose)
    {
        isClose = false;
        if (message.IsEmpty) return (-1, []);
        if (supportsClose && message[0] == StreamProtocols.ChannelClose)
        {
            if (message.Length != 2) throw new InvalidDataException($"a close signal carries one channel byte, not {message.Length - 1}");
            isClose = true;
            return (message[1], []);
        }
        if (base64)
            return (message[0] - '0', Convert.FromBase64String(Encoding.ASCII.GetString(message[1..])));
        return (message[0], message[1..].ToArray());
    }

    /// <summary>Reads messages until the socket closes, routing payloads to the channels.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                message.SetLength(0);
                WebSocketReceiveResult r;
                do
                {
                    r = await _socket.ReceiveAsync(buffer, ct).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close) goto closed;
                    message.Write(buffer, 0, r.Count);
                    if (message.Length > 16 << 20) throw new InvalidDataException("WebSocket message larger than 16 MiB");
                } while (!r.EndOfMessage);
                Activity?.Invoke();
                var (channel, data) = Decode(message.GetBuffer().AsSpan(0, (int)message.Length), Base64, SupportsClose, out bool isClose);
                if (channel < 0 || channel >= _inbound.Length) continue; // kubelet ignores frames for unknown channels
                if (isClose) { _inbound[channel].Writer.Complete(); continue; }
                if (data.Length == 0) continue;
                // A channel nobody reads (write-only, or stopped) completes at once and drops the data.
                try { await _inbound[channel].Writer.WriteAsync(data, ct).ConfigureAwait(false); }
                catch (InvalidOperationException) { } // channel already closed
            }
        closed:
            if (_socket.State == WebSocketState.CloseReceived)
            {
                try { await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ConfigureAwait(false); } catch { }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException or InvalidDataException or FormatException)
        {
        }
        finally
        {
            foreach (var p in _inbound) p.Writer.Complete();
            try { _closed.Cancel(); } catch (ObjectDisposedException) { }
        }
    }

    internal async ValueTask SendAsync(int channel, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var (msg, type) = Encode(channel, data.Span, Base64);
        await SendRawAsync(msg, type, ct).ConfigureAwait(false);
    }

    /// <summary>Sends the v5 close signal for a channel (the client's stdin half-close).</summary>
    public async ValueTask SendCloseSignalAsync(int channel, CancellationToken ct = default)
    {
        if (!SupportsClose) return;
        await SendRawAsync([StreamProtocols.ChannelClose, (byte)channel], WebSocketMessageType.Binary, ct).ConfigureAwait(false);
    }

    private async ValueTask SendRawAsync(byte[] message, WebSocketMessageType type, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try { await _socket.SendAsync(message, type, true, ct).ConfigureAwait(false); }
        catch (WebSocketException e) { throw new IOException("WebSocket send failed: " + e.Message, e); }
        finally { _sendLock.Release(); }
        Activity?.Invoke();
    }

    internal PipeReader Reader(int channel) => _inbound[channel].Reader;

    /// <summary>Closes the socket normally and waits briefly for the peer's close.</summary>
    public async Task CloseAsync(TimeSpan linger)
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException) { }
        finally { _sendLock.Release(); }
        try { await Task.Delay(linger, _closed.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Abort();
        _socket.Dispose();
        foreach (var p in _inbound) p.Writer.Complete();
        return ValueTask.CompletedTask;
    }

    /// <summary>One channel as a Stream: reads what the peer sent on it, writes send messages on it.</summary>
    public sealed class ChannelStream : DuplexStream
    {
        private readonly WebSocketChannelConnection _conn;

        internal ChannelStream(WebSocketChannelConnection conn, int channel)
        {
            _conn = conn;
            Channel = channel;
        }

        public int Channel { get; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty) return 0;
            var reader = _conn.Reader(Channel);
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var seq = result.Buffer;
            if (seq.IsEmpty && result.IsCompleted) { reader.AdvanceTo(seq.End); return 0; }
            int n = (int)Math.Min(seq.Length, buffer.Length);
            var slice = seq.Slice(0, n);
            System.Buffers.BuffersExtensions.CopyTo(slice, buffer.Span);
            reader.AdvanceTo(slice.End);
            return n;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            // Large writes are split so one channel cannot hog the socket.
            do
            {
                var chunk = buffer[..Math.Min(buffer.Length, 32 * 1024)];
                await _conn.SendAsync(Channel, chunk, cancellationToken).ConfigureAwait(false);
                buffer = buffer[chunk.Length..];
            } while (!buffer.IsEmpty);
        }

        /// <summary>Stops reading the channel: what the peer still sends on it is dropped from now on. Idempotent.</summary>
        public void StopReading() => _conn.Reader(Channel).Complete();

        /// <summary>Writes a message with no payload (kubelet's "connection is ready" signal).</summary>
        public ValueTask WriteEmptyAsync(CancellationToken ct = default) => _conn.SendAsync(Channel, ReadOnlyMemory<byte>.Empty, ct);

    }
}
