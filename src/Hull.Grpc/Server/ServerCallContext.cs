using Hull.Grpc.Hpack;

namespace Hull.Grpc.Server;

/// <summary>What a handler knows about the call it serves.</summary>
public sealed class ServerCallContext
{
    internal ServerCallContext(string method, string authority, IReadOnlyList<HeaderField> requestHeaders, DateTime? deadline,
        CancellationToken cancellationToken)
    {
        Method = method;
        Authority = authority;
        RequestHeaders = requestHeaders;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The full method name, e.g. "/runtime.v1.RuntimeService/Version".</summary>
    public string Method { get; }
    public string Authority { get; }
    public IReadOnlyList<HeaderField> RequestHeaders { get; }
    /// <summary>UTC deadline from grpc-timeout, if the client set one.</summary>
    public DateTime? Deadline { get; }
    /// <summary>Cancelled at the deadline, when the client resets the stream, or when the connection ends.</summary>
    public CancellationToken CancellationToken { get; }
}

/// <summary>Sends the messages of a server-streaming response.</summary>
public interface IServerStreamWriter<in T>
{
    Task WriteAsync(T message);
}
