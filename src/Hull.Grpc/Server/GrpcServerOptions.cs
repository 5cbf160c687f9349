using Grpc.Core;
using Hull.Grpc.Http2;

namespace Hull.Grpc.Server;

public sealed record GrpcServerOptions
{
    public int MaxReceiveMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;
    public int MaxSendMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;
    public Http2ServerOptions Http2 { get; init; } = new();
}

/// <summary>Observes finished calls (logging, metrics) without the transport knowing who listens.</summary>
public readonly record struct CallRecord(string Method, StatusCode Status, string? Message, TimeSpan Duration);
