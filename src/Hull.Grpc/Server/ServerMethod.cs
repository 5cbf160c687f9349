using System.Buffers;
using Grpc.Core;
using Hull.Grpc.Marshalling;

namespace Hull.Grpc.Server;

/// <summary>A method registered by generated code: parses the request, runs the handler and writes its response.</summary>
internal abstract class ServerMethod(bool isServerStreaming)
{
    public bool IsServerStreaming { get; } = isServerStreaming;

    /// <summary>Why the method cannot be served (a call shape Hull's server does not support), or null.</summary>
    public virtual string? Unsupported => null;

    /// <summary>The request message's type, for parse errors.</summary>
    public abstract string RequestType { get; }

    public abstract object ParseRequest(ReadOnlySequence<byte> payload);

    public abstract Task InvokeAsync(object request, ServerCall call, GrpcCallContext context);
}

internal abstract class ServerMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, bool isServerStreaming)
    : ServerMethod(isServerStreaming)
    where TRequest : class
    where TResponse : class
{
    protected Method<TRequest, TResponse> Method { get; } = method;

    public override string RequestType => typeof(TRequest).Name;

    public override object ParseRequest(ReadOnlySequence<byte> payload) =>
        Method.RequestMarshaller.ContextualDeserializer(new PayloadReader(payload));
}

internal sealed class UnaryMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
    : ServerMethod<TRequest, TResponse>(method, isServerStreaming: false)
    where TRequest : class
    where TResponse : class
{
    public override async Task InvokeAsync(object request, ServerCall call, GrpcCallContext context)
    {
        var response = await handler((TRequest)request, context).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{Method.FullName} returned no response message");
        await call.WriteMessageAsync(Method.ResponseMarshaller, response, ServerCall.FinalTrailers(context), context.CancellationToken).ConfigureAwait(false);
    }
}

internal sealed class ServerStreamingMethod<TRequest, TResponse>(Method<TRequest, TResponse> method,
    ServerStreamingServerMethod<TRequest, TResponse> handler)
    : ServerMethod<TRequest, TResponse>(method, isServerStreaming: true)
    where TRequest : class
    where TResponse : class
{
    // The server ends the call with the status and trailers the handler set once it returns.
    public override Task InvokeAsync(object request, ServerCall call, GrpcCallContext context) =>
        handler((TRequest)request, new ResponseStream(Method.ResponseMarshaller, call, context.CancellationToken), context);

    private sealed class ResponseStream(Marshaller<TResponse> marshaller, ServerCall call, CancellationToken callToken) : IServerStreamWriter<TResponse>
    {
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(TResponse message) => call.WriteMessageAsync(marshaller, message, trailers: null, callToken);

        public async Task WriteAsync(TResponse message, CancellationToken cancellationToken)
        {
            if (!cancellationToken.CanBeCanceled)
            {
                await WriteAsync(message).ConfigureAwait(false);
                return;
            }
            using var both = CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken);
            await call.WriteMessageAsync(marshaller, message, trailers: null, both.Token).ConfigureAwait(false);
        }
    }
}

/// <summary>Client-streaming and bidirectional methods: Hull's server buffers whole request bodies, so it serves neither.</summary>
internal sealed class UnsupportedMethod(IMethod method) : ServerMethod(isServerStreaming: false)
{
    public override string? Unsupported { get; } =
        $"method {method.FullName.TrimStart('/')} is {(method.Type == MethodType.ClientStreaming ? "client" : "bidirectional")}-streaming, which Hull's gRPC server does not serve";

    public override string RequestType => "";

    public override object ParseRequest(ReadOnlySequence<byte> payload) => throw new NotSupportedException(Unsupported);

    public override Task InvokeAsync(object request, ServerCall call, GrpcCallContext context) => throw new NotSupportedException(Unsupported);
}
