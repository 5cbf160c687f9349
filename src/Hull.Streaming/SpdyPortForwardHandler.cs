using System.Text;
using Hull.Streaming.Spdy;
using Microsoft.Extensions.Logging;

namespace Hull.Streaming;

/// <summary>
/// portforward.k8s.io over SPDY: the client opens an error stream and a data stream per forwarded
/// connection, paired by the <c>requestID</c> header (kubelet's httpStreamHandler).
/// </summary>
internal sealed class SpdyPortForwardHandler(SpdySession session, IStreamingRuntime runtime, string podSandboxId, TimeSpan creationTimeout, ILogger log)
{
    private sealed class Pair
    {
        public SpdyStream? Data, Error;
        public CancellationTokenSource? Timeout;
    }

    private readonly Dictionary<string, Pair> _pairs = new();
    private readonly List<Task> _running = new();

    public async Task RunAsync()
    {
        try
        {
            await foreach (var s in session.IncomingStreams.ReadAllAsync(session.Closed).ConfigureAwait(false))
            {
                var type = s.Headers.Get(StreamProtocols.HeaderStreamType);
                if (type is not (StreamProtocols.StreamTypeData or StreamProtocols.StreamTypeError))
                {
                    log.LogWarning("port-forward stream {Id} has invalid stream type {Type}", s.Id, type);
                    await s.ResetAsync(SpdyRstStatus.RefusedStream).ConfigureAwait(false);
                    continue;
                }
                await s.ReplyAsync(StreamingServer.ReplyHeaders()).ConfigureAwait(false);
                // Clients that predate requestID pair error stream N with data stream N+2.
                string id = s.Headers.Get(StreamProtocols.HeaderRequestId)
                    ?? (type == StreamProtocols.StreamTypeError ? s.Id : s.Id - 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
                Pair pair;
                lock (_pairs)
                {
                    if (!_pairs.TryGetValue(id, out pair!))
                    {
                        pair = new Pair();
                        _pairs[id] = pair;
                        pair.Timeout = new CancellationTokenSource(creationTimeout);
                        var p = pair;
                        pair.Timeout.Token.Register(() => _ = ExpireAsync(id, p));
                    }
                    if (type == StreamProtocols.StreamTypeData) pair.Data = s; else pair.Error = s;
                    if (pair.Data == null || pair.Error == null) continue;
                    _pairs.Remove(id);
                }
                pair.Timeout!.Dispose();
                lock (_running) _running.Add(ForwardAsync(pair.Data, pair.Error));
            }
        }
        catch (OperationCanceledException) { }
        catch (System.Threading.Channels.ChannelClosedException) { }
        Task[] running;
        lock (_running) running = _running.ToArray();
        await Task.WhenAll(running).ConfigureAwait(false);
    }

    private async Task ExpireAsync(string id, Pair pair)
    {
        lock (_pairs)
        {
            if (!_pairs.Remove(id)) return;
        }
        log.LogInformation("port-forward request {Id}: timed out waiting for its data and error streams", id);
        if (pair.Data != null) await pair.Data.ResetAsync().ConfigureAwait(false);
        if (pair.Error != null) await pair.Error.ResetAsync().ConfigureAwait(false);
    }

    private async Task ForwardAsync(SpdyStream data, SpdyStream error)
    {
        await Task.Yield();
        var portHeader = data.Headers.Get(StreamProtocols.HeaderPort);
        try
        {
            if (!ushort.TryParse(portHeader, out var port) || port == 0)
                throw new InvalidDataException($"invalid port \"{portHeader}\"");
            await runtime.PortForwardAsync(podSandboxId, port, data, session.Closed).ConfigureAwait(false);
        }
        catch (Exception e) when (!session.Closed.IsCancellationRequested)
        {
            var msg = $"error forwarding port {portHeader} to pod {podSandboxId}: {e.Message}";
            log.LogWarning("{Message}", msg);
            try { await error.WriteAsync(Encoding.UTF8.GetBytes(msg)).ConfigureAwait(false); } catch (IOException) { }
        }
        catch (OperationCanceledException) { }
        await data.CloseWriteAsync().ConfigureAwait(false);
        await error.CloseWriteAsync().ConfigureAwait(false);
        // The pod side is done (FIN sent after all its data). A client still sending would wait for window updates
        // that never come: reset the stream so it stops, as an HTTP/2 server does after a complete response.
        if (!data.RemoteClosed) await data.ResetAsync(SpdyRstStatus.Cancel).ConfigureAwait(false);
    }
}
