using Hull.Grpc.Telemetry;
using Microsoft.Extensions.Logging;

namespace Hull.Grpc.Http2;

/// <summary>The time limits of <see cref="Http2ServerOptions"/>, keepalive, and how the connection is closed.</summary>
public sealed partial class Http2Connection
{
    /// <summary>Stops the read loop; RunAsync then tears the connection down.</summary>
    private void Close()
    {
        _closed.Cancel();
        _input.CancelPendingRead();
    }

    /// <summary>Logs why the connection ends, once: the first reason is the one that matters.</summary>
    private void LogClose(LogLevel level, Http2ErrorCode? code, string reason)
    {
        if (Interlocked.Exchange(ref _closeLogged, 1) != 0 || !_log.IsEnabled(level)) return;
        if (code is { } c) _log.Log(level, "HTTP/2 connection {Peer} closed with GOAWAY({Code}): {Reason}", _peer, c, reason);
        else _log.Log(level, "HTTP/2 connection {Peer} closed: {Reason}", _peer, reason);
    }

    internal static string Seconds(TimeSpan t) => $"{t.TotalSeconds:0.###} s";

    private static bool Exceeded(long elapsedMs, TimeSpan limit) => limit != Timeout.InfiniteTimeSpan && elapsedMs > limit.TotalMilliseconds;

    /// <summary>
    /// Enforces the time limits (first SETTINGS, header block completion, request body progress, writes the peer
    /// does not read) and sends keepalive PINGs, checking a few times per shortest limit.
    /// </summary>
    private async Task WatchdogAsync()
    {
        var o = _options;
        long shortest = new[] { o.PrefaceTimeout, o.RequestHeadersTimeout, o.RequestBodyTimeout, o.WriteTimeout, o.KeepAliveInterval, o.KeepAliveTimeout }
            .Where(t => t > TimeSpan.Zero).Select(t => t.Ticks).DefaultIfEmpty(TimeSpan.TicksPerSecond).Min();
        var tick = TimeSpan.FromTicks(Math.Clamp(shortest / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));
        try
        {
            long pingSentAt = 0;
            (int Flush, long Since) stuck = (0, 0);
            using var timer = new PeriodicTimer(tick);
            // Stopped by disposing it, not by a token: a cancelled wait makes PeriodicTimer capture a stack trace with
            // file and line numbers, which loads System.Reflection.Metadata and reads PDBs at every connection's end.
            using var stop = _closed.Token.UnsafeRegister(static t => ((PeriodicTimer)t!).Dispose(), timer);
            while (await timer.WaitForNextTickAsync().ConfigureAwait(false))
            {
                long now = Environment.TickCount64;
                if (Writer.PendingFlush is not { } flush) stuck = (0, 0);
                else if (flush != stuck.Flush) stuck = (flush, now);
                else if (Exceeded(now - stuck.Since, o.WriteTimeout))
                {
                    // A GOAWAY could not get through either: drop the connection.
                    LogClose(LogLevel.Warning, null, $"the peer read nothing for {Seconds(o.WriteTimeout)} while the server was writing");
                    GrpcTelemetry.CountTimeout("write");
                    Writer.Abort();
                    Close();
                    return;
                }
                if (!_settingsSeen && Exceeded(now - _openedAt, o.PrefaceTimeout))
                {
                    LogClose(LogLevel.Information, null, $"no SETTINGS within {Seconds(o.PrefaceTimeout)} of connecting");
                    GrpcTelemetry.CountTimeout("preface");
                    Close();
                    return;
                }
                long headerBlockStarted = Volatile.Read(ref _headerBlockStartedAt);
                if (headerBlockStarted != 0 && Exceeded(now - headerBlockStarted, o.RequestHeadersTimeout))
                {
                    GrpcTelemetry.CountTimeout("header_block");
                    await CloseWithGoAwayAsync(Http2ErrorCode.EnhanceYourCalm,
                        $"the header block of stream {_headerBlockStart.StreamId} was not completed within {Seconds(o.RequestHeadersTimeout)}").ConfigureAwait(false);
                    return;
                }
                TimeOutStalledBodies(now);

                if (Interlocked.Read(ref _pendingPing) != -1)
                {
                    if (Exceeded(now - pingSentAt, o.KeepAliveTimeout))
                    {
                        GrpcTelemetry.CountTimeout("keepalive");
                        await CloseWithGoAwayAsync(Http2ErrorCode.NoError, "keepalive ping not acknowledged").ConfigureAwait(false);
                        return;
                    }
                    continue;
                }
                if (!Exceeded(now - Volatile.Read(ref _lastFrameTicks), o.KeepAliveInterval)) continue;
                pingSentAt = now;
                Interlocked.Exchange(ref _pendingPing, now);
                await Writer.WritePingAsync(ack: false, (ulong)now).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task CloseWithGoAwayAsync(Http2ErrorCode code, string reason)
    {
        LogClose(code == Http2ErrorCode.NoError ? LogLevel.Debug : LogLevel.Warning, code, reason);
        await Writer.WriteGoAwayAsync(_lastStreamId, code, reason).ConfigureAwait(false);
        Close();
    }

    /// <summary>Fails the requests whose body made no progress for RequestBodyTimeout; their handlers answer and end them.</summary>
    private void TimeOutStalledBodies(long now)
    {
        var timeout = _options.RequestBodyTimeout;
        List<Http2Stream>? stalled = null;
        lock (_streams)
        {
            foreach (var stream in _streams.Values)
                if (!stream.RequestCompleted && Exceeded(now - stream.BodyProgressAt, timeout))
                    (stalled ??= new()).Add(stream);
        }
        if (stalled is null) return;
        foreach (var stream in stalled)
            if (stream.TimeOutBody(timeout))
                _log.LogDebug("HTTP/2 connection {Peer}: stream {Stream}: request body made no progress for {Timeout}", _peer, stream.Id, Seconds(timeout));
    }
}
