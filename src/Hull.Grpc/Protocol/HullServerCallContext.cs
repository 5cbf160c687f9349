using Grpc.Core;

namespace Hull.Grpc;

/// <summary>
/// What a handler bound through Grpc.Core.Api knows about its call, the same shape on both of Hull's servers (gRPC
/// over HTTP/2 and ttrpc): deadline (<see cref="DateTime.MaxValue"/> when none), cancellation, and the status and
/// trailers the handler sets. Each transport supplies method, host, peer, request headers and response headers from
/// what it already holds (one of these is allocated per call).
/// </summary>
internal abstract class HullServerCallContext(DateTime deadline, CancellationToken cancellationToken) : ServerCallContext
{
    private static readonly AuthContext NoAuth = new(null, new Dictionary<string, List<AuthProperty>>());
    private Metadata? _responseTrailers;

    protected override DateTime DeadlineCore => deadline;
    protected override CancellationToken CancellationTokenCore => cancellationToken;
    protected override Metadata ResponseTrailersCore => _responseTrailers ??= [];
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => NoAuth;

    /// <summary>The trailers the handler added, or null if it added none (most calls: they cost no <see cref="Metadata"/>).</summary>
    internal Metadata? AddedTrailers => _responseTrailers is { Count: > 0 } trailers ? trailers : null;

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("Hull's servers do not propagate deadlines or cancellation to child calls");
}
