using Grpc.Core;
using Hull.Grpc.Http2;

namespace Hull.Grpc.Server;

/// <summary>A gRPC call's context: request headers are turned into <see cref="Metadata"/> only if the handler asks for them.</summary>
internal sealed class GrpcCallContext(Http2Stream stream, ServerCall call, DateTime deadline, CancellationToken cancellationToken)
    : HullServerCallContext(deadline, cancellationToken)
{
    private Metadata? _requestHeaders;

    protected override string MethodCore => stream.Path;
    protected override string HostCore => stream.Authority;
    protected override string PeerCore => stream.Peer;

    protected override Metadata RequestHeadersCore => _requestHeaders ??= GrpcMetadata.FromHeaders(stream.RequestHeaders);

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => call.WriteHeadersAsync(responseHeaders, CancellationToken);
}
