namespace Hull.Grpc;

/// <summary>gRPC status codes (grpc/doc/statuscodes.md).</summary>
public enum StatusCode
{
    OK = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>A call that ended with a non-OK status, on the server (thrown by handlers) or the client.</summary>
public sealed class RpcException(StatusCode code, string detail) : Exception($"{code}: {detail}")
{
    public StatusCode StatusCode { get; } = code;
    public string Detail { get; } = detail;
}
