using Grpc.Core;
using Hull.Core;

namespace Hull.Cri;

/// <summary>The one place where domain error kinds become gRPC status codes.</summary>
public static class StatusMapping
{
    public static StatusCode ToStatusCode(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        _ => StatusCode.Internal,
    };

    /// <summary>Turns an exception escaping a handler into the status the client sees; null leaves it to the transport.</summary>
    public static Status? Map(Exception exception) => exception switch
    {
        HullException h => new Status(ToStatusCode(h.Kind), h.Message),
        Hull.Streaming.StreamingRequestLimitException s => new Status(StatusCode.ResourceExhausted, s.Message),
        _ => null,
    };
}
