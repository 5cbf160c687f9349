namespace Hull.Core;

/// <summary>What kind of failure a domain error is; Hull.Cri maps each kind to one gRPC status code.</summary>
public enum ErrorKind
{
    NotFound,
    AlreadyExists,
    InvalidArgument,
    FailedPrecondition,
    Unavailable,
    DeadlineExceeded,
    ResourceExhausted,
    Internal,
}

/// <summary>A domain error whose message names the object and the problem.</summary>
public class HullException(ErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorKind Kind { get; } = kind;
}
