namespace Hull.Grpc.Http2;

/// <summary>
/// grpc-go's keepalive enforcement for PINGs from the client (internal/transport/http2_server.go handlePing):
/// a PING that comes sooner than the minimum interval after the previous one is a strike, unless the server has
/// sent response headers or data since; too many strikes and the client is told to calm down. Pings that follow
/// responses (grpc-go's BDP estimator sends one per burst of received data) therefore never count.
/// </summary>
internal struct PingPolicy(Http2ServerOptions options)
{
    private long _lastPingAt = long.MinValue / 2;
    private int _strikes;

    /// <summary>Records a PING; false once the client exceeded the policy.</summary>
    public bool Allow(bool responseSentSinceLastPing, bool hasStreams)
    {
        long now = Environment.TickCount64;
        long last = _lastPingAt;
        _lastPingAt = now;
        if (responseSentSinceLastPing)
        {
            _strikes = 0;
            return true;
        }
        var minimum = hasStreams ? options.MinPingInterval : options.MinPingIntervalWithoutStreams;
        if (now - last < minimum.TotalMilliseconds) _strikes++;
        return _strikes <= options.MaxPingStrikes;
    }
}
