namespace Hull.Grpc.Http2;

/// <summary>Limits one server connection advertises and enforces.</summary>
public sealed record Http2ServerOptions
{
    public int MaxConcurrentStreams { get; init; } = 1000;
    /// <summary>Receive window granted to each stream (SETTINGS_INITIAL_WINDOW_SIZE).</summary>
    public int StreamWindowSize { get; init; } = 4 << 20;
    /// <summary>Receive window of the whole connection, raised from 65535 by an initial WINDOW_UPDATE.</summary>
    public int ConnectionWindowSize { get; init; } = 16 << 20;
    public int MaxFrameSize { get; init; } = Http2Limits.DefaultMaxFrameSize;
    public int MaxHeaderListSize { get; init; } = 64 << 10;
    public int HeaderTableSize { get; init; } = 4096;
    /// <summary>A PING is sent after this long without any frame from the peer.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromHours(2);
    /// <summary>The connection is closed when a keepalive PING is not answered within this time.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);
}
