namespace Hull.Grpc.Ttrpc;

using global::Grpc.Core;

/// <summary>
/// A message over ttrpc's 4 MiB limit was not sent (upstream's OversizedMessageErr): ResourceExhausted, with the
/// rejected and maximum lengths so a caller can split its request (NRI's Synchronize does).
/// </summary>
public sealed class TtrpcMessageTooLargeException(long rejectedLength)
    : RpcException(new Status(StatusCode.ResourceExhausted, TtrpcProtocol.OversizedMessage(rejectedLength)))
{
    public long RejectedLength { get; } = rejectedLength;
    public int MaximumLength => TtrpcProtocol.MaxMessageLength;
}

internal static class TtrpcStatus
{
    /// <summary>The connection is gone (upstream's ErrClosed); pending and later calls fail with it.</summary>
    public static RpcException Closed(string? why = null) =>
        new(new Status(StatusCode.Unavailable, why is null ? "ttrpc: closed" : $"ttrpc: closed: {why}"));

    public static Wire.Status ToWire(Status status) => new() { Code = (int)status.StatusCode, Message = status.Detail ?? "" };

    public static Status FromWire(Wire.Status? status) =>
        status is null ? Status.DefaultSuccess : new Status((StatusCode)status.Code, status.Message);
}
