namespace Hull.Grpc.Ttrpc;

using System.Collections.Concurrent;
using global::Grpc.Core;
using Hull.Grpc.Marshalling;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>
/// A ttrpc client: a <see cref="CallInvoker"/>, so the client stubs Grpc.Tools generates (<c>new Xxx.XxxClient(client)</c>)
/// call over ttrpc. Unary calls only (streaming calls fail with UNIMPLEMENTED). Streams get odd, increasing ids;
/// the call's deadline travels as timeout_nano and is also enforced here, so a peer that never answers cannot hold
/// a caller; headers travel as metadata. When the connection ends every pending call fails at once with UNAVAILABLE.
/// </summary>
public sealed class TtrpcClient : CallInvoker, IAsyncDisposable
{
    private readonly TtrpcChannel _channel;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<TtrpcFrame>> _pending = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _receiving;
    private readonly Lazy<Task> _disposal;
    private uint _nextStreamId = 1;
    private volatile string? _closedReason;

    public TtrpcClient(Stream connection, ILogger? logger = null)
    {
        _channel = new TtrpcChannel(connection);
        _logger = logger ?? NullLogger.Instance;
        _receiving = Task.Run(ReceiveAsync);
        _disposal = new Lazy<Task>(DisposeOnceAsync);
    }

    /// <summary>Completes when the connection has ended (closed by either side or broken).</summary>
    public Task Completion => _receiving;

    public bool IsClosed => _closedReason is not null;

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        UnaryAsync(method, options, request).GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var call = UnaryAsync(method, options, request);
        return new AsyncUnaryCall<TResponse>(call, Task.FromResult(new Metadata()),
            () => call.IsCompletedSuccessfully ? Status.DefaultSuccess
                : call.Exception?.InnerException is RpcException e ? e.Status : new Status(StatusCode.Unknown, "call has not completed"),
            () => [], () => { });
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw StreamingUnsupported(method);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw StreamingUnsupported(method);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw StreamingUnsupported(method);

    private static RpcException StreamingUnsupported(IMethod method) =>
        new(new Status(StatusCode.Unimplemented, $"ttrpc: streaming method {method.FullName} is not supported by Hull's ttrpc client"));

    private async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options, TRequest request)
        where TRequest : class where TResponse : class
    {
        var envelope = new Wire.Request
        {
            Service = method.ServiceName,
            Method = method.Name,
            Payload = UnsafeByteOperations.UnsafeWrap(PayloadCodec.ToArray(method.RequestMarshaller, request)),
        };
        TimeSpan? timeout = null;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            timeout = deadline.ToUniversalTime() - DateTime.UtcNow;
            if (timeout < TimeSpan.Zero) timeout = TimeSpan.Zero;
            envelope.TimeoutNano = Math.Max(1, timeout.Value.Ticks * 100);
        }
        if (options.Headers is { } headers)
            foreach (var entry in headers)
                if (!entry.IsBinary) envelope.Metadata.Add(new Wire.KeyValue { Key = entry.Key, Value = entry.Value });
        var bytes = envelope.ToByteArray();
        if (bytes.Length > TtrpcProtocol.MaxMessageLength) throw new TtrpcMessageTooLargeException(bytes.Length);

        using var callScope = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        if (timeout is { } t) callScope.CancelAfter(t);
        var completion = new TaskCompletionSource<TtrpcFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        uint streamId = 0;
        try
        {
            using (await _channel.LockWritesAsync(callScope.Token).ConfigureAwait(false))
            {
                if (_closedReason is { } reason) throw TtrpcStatus.Closed(reason);
                streamId = _nextStreamId;
                _nextStreamId += 2;
                _pending[streamId] = completion;
                await _channel.WriteLockedAsync(streamId, TtrpcMessageType.Request, 0, bytes, callScope.Token).ConfigureAwait(false);
            }
            var frame = await completion.Task.WaitAsync(callScope.Token).ConfigureAwait(false);
            var response = Wire.Response.Parser.ParseFrom(frame.Payload);
            var status = TtrpcStatus.FromWire(response.Status);
            if (status.StatusCode != StatusCode.OK) throw new RpcException(status);
            return PayloadCodec.Parse(method.ResponseMarshaller, response.Payload.Memory);
        }
        catch (OperationCanceledException) when (callScope.IsCancellationRequested && !options.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"{method.FullName}: deadline of {timeout} exceeded"));
        }
        catch (OperationCanceledException) when (options.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, $"{method.FullName}: cancelled"));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw TtrpcStatus.Closed(e.Message);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"{method.FullName}: malformed response: {e.Message}"));
        }
        finally
        {
            if (streamId != 0) _pending.TryRemove(streamId, out _);
        }
    }

    private async Task ReceiveAsync()
    {
        string reason = "connection closed by peer";
        try
        {
            while (await _channel.ReadAsync(_closing.Token).ConfigureAwait(false) is { } frame)
            {
                var id = frame.Header.StreamId;
                if (!_pending.TryGetValue(id, out var waiter))
                {
                    _logger.LogDebug("ttrpc: received message on inactive stream {Stream}", id);
                    continue;
                }
                if (frame.Oversized)
                    waiter.TrySetException(new RpcException(new Status(StatusCode.ResourceExhausted, TtrpcProtocol.OversizedMessage(frame.Header.Length))));
                else if (frame.Header.Type == TtrpcMessageType.Response)
                    waiter.TrySetResult(frame);
                else if (frame.Header.Type == TtrpcMessageType.Data)
                    waiter.TrySetException(new RpcException(new Status(StatusCode.Internal, "ttrpc: received data from non-streaming server: protocol error")));
                else
                    _logger.LogDebug("ttrpc: ignoring message of unknown type {Type} on stream {Stream}", (byte)frame.Header.Type, id);
            }
        }
        catch (OperationCanceledException)
        {
            reason = "client closed";
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            reason = e.Message;
        }
        _closedReason = reason;
        // Take the write lock so no call slips a request in after the pending calls are failed.
        try
        {
            using (await _channel.LockWritesAsync(CancellationToken.None).ConfigureAwait(false)) _closedReason = reason;
        }
        catch (ObjectDisposedException)
        {
        }
        foreach (var (id, waiter) in _pending)
            if (_pending.TryRemove(id, out _)) waiter.TrySetException(TtrpcStatus.Closed(reason));
    }

    /// <summary>Closes the connection; idempotent, and a second or concurrent call waits for the first to finish.</summary>
    public ValueTask DisposeAsync() => new(_disposal.Value);

    private async Task DisposeOnceAsync()
    {
        await _closing.CancelAsync().ConfigureAwait(false);
        await _channel.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _receiving.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogDebug("ttrpc: receive loop ended with {Error}", e.Message);
        }
        _closing.Dispose();
    }
}
