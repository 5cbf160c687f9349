using System.Buffers;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Hull.Grpc.Server;

/// <summary>A bound RPC: parses the request, runs the implementation and writes its response.</summary>
internal abstract class ServerMethod(MethodDescriptor descriptor)
{
    public MethodDescriptor Descriptor { get; } = descriptor;

    public IMessage ParseRequest(ReadOnlySequence<byte> payload) => Descriptor.InputType.Parser.ParseFrom(payload);

    public abstract Task InvokeAsync(IMessage request, ServerCall call, ServerCallContext context);
}

internal sealed class UnaryMethod<TRequest, TResponse>(MethodDescriptor descriptor, Func<TRequest, ServerCallContext, Task<TResponse>> handler)
    : ServerMethod(descriptor)
    where TRequest : IMessage
    where TResponse : IMessage
{
    public override async Task InvokeAsync(IMessage request, ServerCall call, ServerCallContext context)
    {
        var response = await handler((TRequest)request, context).ConfigureAwait(false);
        await call.WriteMessageAsync(response, thenOk: true, context.CancellationToken).ConfigureAwait(false);
    }
}

internal sealed class ServerStreamingMethod<TRequest, TResponse>(MethodDescriptor descriptor,
    Func<TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task> handler)
    : ServerMethod(descriptor)
    where TRequest : IMessage
    where TResponse : IMessage
{
    public override async Task InvokeAsync(IMessage request, ServerCall call, ServerCallContext context)
    {
        await handler((TRequest)request, new Writer(call, context.CancellationToken), context).ConfigureAwait(false);
        await call.CompleteAsync(StatusCode.OK, null).ConfigureAwait(false);
    }

    private sealed class Writer(ServerCall call, CancellationToken cancellationToken) : IServerStreamWriter<TResponse>
    {
        public Task WriteAsync(TResponse message) => call.WriteMessageAsync(message, thenOk: false, cancellationToken);
    }
}

/// <summary>Answers UNIMPLEMENTED with a message naming the method, for RPCs whose implementation has not landed.</summary>
internal sealed class UnimplementedMethod(MethodDescriptor descriptor, string message) : ServerMethod(descriptor)
{
    public string Message { get; } = message;

    public override Task InvokeAsync(IMessage request, ServerCall call, ServerCallContext context) =>
        throw new RpcException(StatusCode.Unimplemented, Message);
}
