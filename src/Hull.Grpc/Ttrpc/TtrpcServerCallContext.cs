namespace Hull.Grpc.Ttrpc;

using global::Grpc.Core;

/// <summary>What a ttrpc handler knows about its call: the method, the request's metadata, its deadline and cancellation.</summary>
internal sealed class TtrpcServerCallContext(string method, Metadata requestHeaders, DateTime deadline, CancellationToken cancellationToken)
    : ServerCallContext
{
    private static readonly AuthContext NoAuth = new(null, new Dictionary<string, List<AuthProperty>>());

    protected override string MethodCore => method;
    protected override string HostCore => "";
    protected override string PeerCore => "unix";
    protected override DateTime DeadlineCore => deadline;
    protected override Metadata RequestHeadersCore => requestHeaders;
    protected override CancellationToken CancellationTokenCore => cancellationToken;
    protected override Metadata ResponseTrailersCore { get; } = [];
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => NoAuth;

    // ttrpc has no response headers: a unary response is one message.
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("ttrpc calls do not propagate to child calls");
}
