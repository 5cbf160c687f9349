using System.Net.WebSockets;

namespace Hull.Streaming;

/// <summary>
/// A byte stream carried in binary WebSocket messages: how kubectl 1.31+ and the API server tunnel a SPDY session
/// through proxies that pass WebSockets only (subprotocol <c>SPDY/3.1+portforward.k8s.io</c>; client-go's
/// TunnelingConnection). Each write is one message; reads return the payloads in order, message boundaries carry no
/// meaning, and a read returns 0 once the peer closed the WebSocket. Used by the server and Hull's client.
/// </summary>
public sealed class WebSocketTunnelStream(WebSocket socket) : DuplexStream
{
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    public WebSocket Socket => socket;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            ValueWebSocketReceiveResult r;
            try { r = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (WebSocketException e) { throw new IOException("WebSocket receive failed: " + e.Message, e); }
            if (r.MessageType == WebSocketMessageType.Close)
            {
                await AnswerCloseAsync().ConfigureAwait(false);
                return 0;
            }
            if (r.MessageType != WebSocketMessageType.Binary)
                throw new InvalidDataException("a SPDY tunnel carries binary WebSocket messages, not text");
            if (r.Count > 0) return r.Count; // an empty message is no end of stream: read on
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try { await socket.SendAsync(buffer, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false); }
        catch (WebSocketException e) { throw new IOException("WebSocket send failed: " + e.Message, e); }
        finally { _sendLock.Release(); }
    }

    /// <summary>Completes the closing handshake the peer started, so it sees a clean close.</summary>
    private async Task AnswerCloseAsync()
    {
        if (socket.State != WebSocketState.CloseReceived) return;
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try { await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException) { }
        finally { _sendLock.Release(); }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            socket.Abort();
            socket.Dispose();
        }
        base.Dispose(disposing);
    }
}
