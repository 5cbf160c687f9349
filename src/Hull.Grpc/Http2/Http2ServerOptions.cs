namespace Hull.Grpc.Http2;

/// <summary>
/// Limits the server advertises and enforces. Every limit that a hostile peer could otherwise stretch (memory,
/// CPU per frame, time a resource is held) has one; defaults are Kestrel's, grpc-go's or nghttp2's where those
/// have one (named on each), else chosen for a local daemon's socket.
/// </summary>
public sealed record Http2ServerOptions
{
    // ---- advertised in SETTINGS ----

    /// <summary>SETTINGS_MAX_CONCURRENT_STREAMS; a stream beyond it is refused (REFUSED_STREAM).</summary>
    public int MaxConcurrentStreams { get; init; } = 1000;
    /// <summary>
    /// Receive window granted to each stream (SETTINGS_INITIAL_WINDOW_SIZE). It is re-granted as the stream's
    /// request body is buffered, which is bounded by the maximum request size.
    /// </summary>
    public int StreamWindowSize { get; init; } = 4 << 20;
    /// <summary>
    /// Receive window of the whole connection, raised from 65535 by an initial WINDOW_UPDATE. It is re-granted
    /// only as handlers consume the request bodies buffered on the connection, so it bounds the request bytes one
    /// connection can make the server hold. It is raised if need be to the maximum request size plus one frame, so a
    /// request always fits and one over the limit is seen to be.
    /// </summary>
    public int ConnectionWindowSize { get; init; } = 16 << 20;
    public int MaxFrameSize { get; init; } = Http2Limits.DefaultMaxFrameSize;
    public int MaxHeaderListSize { get; init; } = 64 << 10;
    public int HeaderTableSize { get; init; } = 4096;

    // ---- memory ----

    /// <summary>
    /// Request body bytes buffered by all connections together. A DATA frame that would go past it fails its
    /// stream's request (gRPC RESOURCE_EXHAUSTED) instead of being buffered.
    /// </summary>
    public long MaxBufferedRequestBytes { get; init; } = 256L << 20;
    /// <summary>Connections served at once; more are answered with GOAWAY(ENHANCE_YOUR_CALM) and closed.</summary>
    public int MaxConnections { get; init; } = 1024;

    // ---- frames that cost work without being requests ----

    /// <summary>CONTINUATION frames allowed in one header block (nghttp2's default); more is ENHANCE_YOUR_CALM.</summary>
    public int MaxContinuationFrames { get; init; } = 8;
    /// <summary>Parameters allowed in one SETTINGS frame (nghttp2's default); more is ENHANCE_YOUR_CALM.</summary>
    public int MaxSettingsPerFrame { get; init; } = 32;
    /// <summary>
    /// SETTINGS frames a peer may send: each is acknowledged and may walk every stream. A client sends one at
    /// the start and a few as its receive window grows; a flood beyond this is ENHANCE_YOUR_CALM.
    /// </summary>
    public RateLimit SettingsRate { get; init; } = new(Burst: 100, PerSecond: 10);
    /// <summary>
    /// Streams ended abnormally: reset by the peer (CVE-2023-44487, rapid reset) or reset by the server for the
    /// peer's stream errors (CVE-2025-8671). nghttp2's default; beyond it the connection ends with ENHANCE_YOUR_CALM.
    /// </summary>
    public RateLimit StreamResetRate { get; init; } = new(Burst: 1000, PerSecond: 33);
    /// <summary>
    /// grpc-go's keepalive enforcement (EnforcementPolicy.MinTime): a PING sooner than this after the previous
    /// one, with no response data sent in between, is a strike (without open streams: sooner than
    /// <see cref="MinPingIntervalWithoutStreams"/>). More than <see cref="MaxPingStrikes"/> strikes end the
    /// connection with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), as grpc-go servers (containerd) do.
    /// </summary>
    public TimeSpan MinPingInterval { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan MinPingIntervalWithoutStreams { get; init; } = TimeSpan.FromHours(2);
    public int MaxPingStrikes { get; init; } = 2;

    // ---- time ----

    /// <summary>
    /// The client connection preface and first SETTINGS must arrive within this (grpc-go waits 120 s; a local
    /// client is much quicker, and a silent connection holds one of <see cref="MaxConnections"/>).
    /// </summary>
    public TimeSpan PrefaceTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>A header block started by HEADERS must be completed by its CONTINUATION frames within this (Kestrel's RequestHeadersTimeout).</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>An unfinished request body must make progress (a DATA frame) at least this often, else the call fails.</summary>
    public TimeSpan RequestBodyTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A write to the socket that does not complete within this (the peer stopped reading) closes the connection.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A response that gets no flow-control window for this long is reset (CANCEL), freeing its stream (nginx's send_timeout).</summary>
    public TimeSpan ZeroWindowTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>A PING is sent after this long without any frame from the peer (from the preface on).</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromHours(2);
    /// <summary>The connection is closed when a keepalive PING is not answered within this time.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>A token bucket: up to <paramref name="Burst"/> events at once, refilled at <paramref name="PerSecond"/>.</summary>
public readonly record struct RateLimit(int Burst, double PerSecond);
