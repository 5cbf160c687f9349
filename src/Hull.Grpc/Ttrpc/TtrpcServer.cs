namespace Hull.Grpc.Ttrpc;

using global::Grpc.Core;
using Hull.Grpc.Marshalling;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>
/// A ttrpc server. Services are registered through the stubs Grpc.Tools generates (<c>Xxx.BindService(server, impl)</c>),
/// as with gRPC; each connection is served by <see cref="ServeAsync"/>. Unary methods are served; streaming methods
/// answer UNIMPLEMENTED naming themselves. Malformed input is answered as containerd/ttrpc's server answers it
/// (server.go): an oversized message gets ResourceExhausted on its stream, an even or reused stream id or data for an
/// unknown stream gets InvalidArgument, and the connection goes on; only a broken stream ends it.
/// </summary>
public sealed class TtrpcServer(ILogger? logger = null) : ServiceBinderBase
{
    private delegate Task<byte[]> Handler(ReadOnlyMemory<byte> payload, ServerCallContext context);

    private readonly Dictionary<string, Dictionary<string, Handler>> _services = new(StringComparer.Ordinal);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Add(method, async (payload, context) =>
        {
            var request = PayloadCodec.Parse(method.RequestMarshaller, payload);
            var response = await handler(request, context).ConfigureAwait(false);
            return PayloadCodec.ToArray(method.ResponseMarshaller, response);
        });
    }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        AddStreaming(method);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        AddStreaming(method);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        AddStreaming(method);

    private void AddStreaming(IMethod method) =>
        Add(method, (_, _) => throw new RpcException(new Status(StatusCode.Unimplemented,
            $"ttrpc: streaming method {method.FullName} is not supported by Hull's ttrpc server")));

    private void Add(IMethod method, Handler handler)
    {
        if (!_services.TryGetValue(method.ServiceName, out var methods))
            _services[method.ServiceName] = methods = new Dictionary<string, Handler>(StringComparer.Ordinal);
        if (!methods.TryAdd(method.Name, handler))
            throw new InvalidOperationException($"ttrpc: method {method.FullName} is registered twice");
    }

    /// <summary>
    /// Serves one connection until the peer closes it, it breaks, or <paramref name="cancellationToken"/> fires.
    /// Requests run concurrently; when the connection ends, calls still running are cancelled.
    /// </summary>
    public async Task ServeAsync(Stream connection, CancellationToken cancellationToken = default)
    {
        var channel = new TtrpcChannel(connection);
        using var connectionScope = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = new HashSet<Task>();
        uint lastStreamId = 0;
        try
        {
            while (await channel.ReadAsync(connectionScope.Token).ConfigureAwait(false) is { } frame)
            {
                var header = frame.Header;
                if (frame.Oversized)
                {
                    Track(SendStatusAsync(header.StreamId, new Status(StatusCode.ResourceExhausted, TtrpcProtocol.OversizedMessage(header.Length))));
                    continue;
                }
                if (header.StreamId % 2 != 1)
                {
                    Track(SendStatusAsync(header.StreamId, new Status(StatusCode.InvalidArgument, "StreamID must be odd for client initiated streams")));
                    continue;
                }
                switch (header.Type)
                {
                    case TtrpcMessageType.Data:
                        // Hull serves unary methods only: no stream is ever open for data.
                        Track(SendStatusAsync(header.StreamId, new Status(StatusCode.InvalidArgument, "StreamID is no longer active")));
                        break;
                    case TtrpcMessageType.Request:
                        if (header.StreamId <= lastStreamId)
                        {
                            Track(SendStatusAsync(header.StreamId, new Status(StatusCode.InvalidArgument, "StreamID cannot be re-used and must increment")));
                            break;
                        }
                        lastStreamId = header.StreamId;
                        Track(HandleAsync(header.StreamId, frame.Payload));
                        break;
                    default:
                        // Unknown message types are ignored for forward compatibility, as upstream does.
                        _logger.LogDebug("ttrpc: ignoring message of unknown type {Type} on stream {Stream}", (byte)header.Type, header.StreamId);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            _logger.LogDebug("ttrpc: connection ended: {Error}", e.Message);
        }
        finally
        {
            connectionScope.Cancel();
            Task[] left;
            lock (running) left = running.ToArray();
            await Task.WhenAll(left).ConfigureAwait(false);
        }

        void Track(Task task)
        {
            lock (running) running.Add(task);
            task.ContinueWith(t => { lock (running) running.Remove(t); }, TaskScheduler.Default);
        }

        async Task HandleAsync(uint streamId, byte[] payload)
        {
            Wire.Request request;
            try
            {
                request = Wire.Request.Parser.ParseFrom(payload);
            }
            catch (InvalidProtocolBufferException e)
            {
                await SendStatusAsync(streamId, new Status(StatusCode.InvalidArgument, $"unmarshal request error: {e.Message}")).ConfigureAwait(false);
                return;
            }
            var (status, data) = await InvokeAsync(request, connectionScope.Token).ConfigureAwait(false);
            await SendResponseAsync(streamId, status, data).ConfigureAwait(false);
        }

        Task SendStatusAsync(uint streamId, Status status) => SendResponseAsync(streamId, status, []);

        async Task SendResponseAsync(uint streamId, Status status, byte[] data)
        {
            var response = new Wire.Response { Status = TtrpcStatus.ToWire(status), Payload = UnsafeByteOperations.UnsafeWrap(data) };
            try
            {
                try
                {
                    await channel.WriteAsync(streamId, TtrpcMessageType.Response, 0, response.ToByteArray(), connectionScope.Token).ConfigureAwait(false);
                }
                catch (TtrpcMessageTooLargeException e)
                {
                    // Upstream drops the connection here; answering the one call is kinder and just as safe.
                    response = new Wire.Response { Status = TtrpcStatus.ToWire(e.Status) };
                    await channel.WriteAsync(streamId, TtrpcMessageType.Response, 0, response.ToByteArray(), connectionScope.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                _logger.LogDebug("ttrpc: cannot answer stream {Stream}: {Error}", streamId, e.Message);
            }
        }
    }

    private async Task<(Status Status, byte[] Data)> InvokeAsync(Wire.Request request, CancellationToken connectionToken)
    {
        if (!_services.TryGetValue(request.Service, out var methods))
            return (new Status(StatusCode.Unimplemented, $"service {request.Service}"), []);
        if (!methods.TryGetValue(request.Method, out var handler))
            return (new Status(StatusCode.Unimplemented, $"method {request.Method}"), []);

        using var callScope = CancellationTokenSource.CreateLinkedTokenSource(connectionToken);
        var deadline = DateTime.MaxValue;
        if (request.TimeoutNano > 0)
        {
            var timeout = TimeSpan.FromTicks(request.TimeoutNano / 100);
            deadline = DateTime.UtcNow + timeout;
            callScope.CancelAfter(timeout);
        }
        var metadata = new Metadata();
        foreach (var kv in request.Metadata) metadata.Add(kv.Key, kv.Value);
        var context = new TtrpcServerCallContext(TtrpcProtocol.FullMethod(request.Service, request.Method), metadata, deadline, callScope.Token);
        try
        {
            var data = await handler(request.Payload.Memory, context).ConfigureAwait(false);
            return (Status.DefaultSuccess, data);
        }
        catch (RpcException e)
        {
            return (e.Status, []);
        }
        catch (OperationCanceledException) when (callScope.IsCancellationRequested && !connectionToken.IsCancellationRequested)
        {
            return (new Status(StatusCode.DeadlineExceeded, $"{context.Method}: deadline exceeded"), []);
        }
        catch (OperationCanceledException)
        {
            return (new Status(StatusCode.Cancelled, $"{context.Method}: cancelled"), []);
        }
        catch (InvalidProtocolBufferException e)
        {
            return (new Status(StatusCode.Internal, $"ttrpc: error unmarshalling payload: {e.Message}"), []);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "ttrpc: {Method} failed", context.Method);
            return (new Status(StatusCode.Unknown, e.Message), []);
        }
    }
}
