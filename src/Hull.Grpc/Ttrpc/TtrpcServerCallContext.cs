namespace Hull.Grpc.Ttrpc;

using global::Grpc.Core;

/// <summary>A ttrpc call's context: its request metadata; ttrpc has no response headers (a unary response is one message).</summary>
internal sealed class TtrpcServerCallContext(string method, Metadata requestHeaders, DateTime deadline, CancellationToken cancellationToken)
    : HullServerCallContext(deadline, cancellationToken)
{
    protected override string MethodCore => method;
    protected override string HostCore => "";
    protected override string PeerCore => "unix";

    protected override Metadata RequestHeadersCore => requestHeaders;

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
