using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using Google.Protobuf.Reflection;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Microsoft.Extensions.Logging;

namespace Hull.Grpc.Server;

/// <summary>
/// gRPC over <see cref="Http2Server"/>: dispatches calls by path to methods bound from generated
/// service descriptors; unknown paths answer UNIMPLEMENTED.
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private static readonly TimeSpan MaxTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
    private static readonly HeaderField[] UnsupportedMediaType = [new(":status", "415"), new("content-type", "text/plain; charset=utf-8")];
    private static readonly byte[] UnsupportedMediaTypeBody =
        "this is a gRPC server: send POST requests with content-type application/grpc\n"u8.ToArray();
    private readonly Dictionary<string, ServerMethod> _methods = new(StringComparer.Ordinal);
    private readonly List<(string Prefix, string Message)> _retiredPrefixes = new();
    private readonly GrpcServerOptions _options;
    private readonly Http2Server _transport;
    // Long-lived server streams (event watches) end at shutdown instead of holding the drain open.
    private readonly CancellationTokenSource _shutdown = new();

    /// <param name="logger">Where the transport reports connections it ends (protocol errors, abuse, timeouts).</param>
    public GrpcServer(GrpcServerOptions? options = null, ILogger? logger = null)
    {
        _options = options ?? new GrpcServerOptions();
        _transport = new Http2Server(_options.Http2, (long)_options.MaxReceiveMessageSize + GrpcProtocol.MessagePrefixLength, HandleAsync, logger);
    }

    /// <summary>Called after every call ends; must not throw or block.</summary>
    public Action<CallRecord>? CallCompleted { get; set; }

    /// <summary>Maps an exception escaping a handler to a status (domain errors); null falls back to UNKNOWN.</summary>
    public Func<Exception, RpcException?>? MapException { get; set; }

    /// <summary>Called when a path under a retired prefix is hit (e.g. to record a deprecation).</summary>
    public Action<string>? RetiredPathCalled { get; set; }

    public int ConnectionCount => _transport.ConnectionCount;

    public GrpcServer AddService(ServiceDescriptor service, object implementation)
    {
        foreach (var (path, method) in ServiceBinder.Bind(service, implementation)) _methods[path] = method;
        return this;
    }

    /// <summary>Every path starting with <paramref name="prefix"/> answers UNIMPLEMENTED with <paramref name="message"/>.</summary>
    public GrpcServer AddRetiredPrefix(string prefix, string message)
    {
        _retiredPrefixes.Add((prefix, message));
        return this;
    }

    public void ListenUnix(string path) => _transport.ListenUnix(path);

    public IPEndPoint ListenTcp(IPEndPoint endPoint) => _transport.ListenTcp(endPoint);

    public Task StopAsync(TimeSpan drainTimeout)
    {
        _shutdown.Cancel();
        return _transport.StopAsync(drainTimeout);
    }

    public ValueTask DisposeAsync() => _transport.DisposeAsync();

    private async Task HandleAsync(Http2Stream stream)
    {
        if (stream.Method != "POST" || !GrpcProtocol.IsGrpcContentType(stream.GetHeader("content-type")))
        {
            await AnswerNonGrpcRequestAsync(stream).ConfigureAwait(false);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var call = new ServerCall(stream, _options.MaxSendMessageSize);
        var (code, message) = await RunCallAsync(stream, call).ConfigureAwait(false);
        if (stream.Aborted.IsCancellationRequested && !call.Completed)
        {
            code = StatusCode.Cancelled;
            message = "the client cancelled the call";
        }
        else
        {
            await call.CompleteAsync(code, message).ConfigureAwait(false);
        }
        CallCompleted?.Invoke(new CallRecord(stream.Path, code, message, Stopwatch.GetElapsedTime(started)));
    }

    /// <summary>
    /// Not a gRPC request: 415 (grpc/doc/PROTOCOL-HTTP2.md) with a line saying what is served, once the request has
    /// ended, as a plain HTTP server answers. Its body is read (within the same limits) and dropped.
    /// </summary>
    private static async Task AnswerNonGrpcRequestAsync(Http2Stream stream)
    {
        try
        {
            await stream.ReadBodyAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RequestBodyTooLargeException or RequestBufferFullException or RequestBodyTimeoutException) { }
        catch (OperationCanceledException)
        {
            return; // reset by the client
        }
        await stream.ReleaseBodyAsync().ConfigureAwait(false);
        var body = stream.Method == "HEAD" ? ReadOnlyMemory<byte>.Empty : UnsupportedMediaTypeBody;
        await stream.SendAsync(UnsupportedMediaType, body, trailers: [], stream.Aborted).ConfigureAwait(false);
    }

    private async Task<(StatusCode, string?)> RunCallAsync(Http2Stream stream, ServerCall call)
    {
        if (!_methods.TryGetValue(stream.Path, out var method))
            return (StatusCode.Unimplemented, UnknownPathMessage(stream.Path));

        TimeSpan? timeout = null;
        if (stream.GetHeader(GrpcProtocol.TimeoutHeader) is { } rawTimeout)
        {
            if (!GrpcProtocol.TryParseTimeout(rawTimeout, out var parsed))
                return (StatusCode.Internal, $"malformed grpc-timeout \"{rawTimeout}\"");
            // Valid values reach 99999999H; beyond what CancelAfter can wait (~49 days; DateTime overflows too)
            // a deadline never fires, so it is no deadline.
            if (parsed <= MaxTimeout) timeout = parsed;
        }
        // The call's token: the stream's own when nothing else can end it (a unary call without a deadline,
        // the common case, then costs no CancellationTokenSource), else one linked to the deadline and,
        // for server streams, to shutdown.
        using var expiry = timeout is null ? null : new CancellationTokenSource();
        using var cancellation = method.Descriptor.IsServerStreaming
            ? expiry is null
                ? CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, _shutdown.Token)
                : CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, expiry.Token, _shutdown.Token)
            : expiry is null ? null : CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, expiry.Token);
        var token = cancellation?.Token ?? stream.Aborted;
        DateTime? deadline = null;
        if (timeout is { } t && expiry is not null)
        {
            deadline = DateTime.UtcNow + t;
            // At the deadline the client is told at once, even if the handler has not noticed yet.
            expiry.Token.UnsafeRegister(static s =>
            {
                var (c, aborted) = ((ServerCall, CancellationToken))s!;
                if (!aborted.IsCancellationRequested) _ = c.CompleteAsync(StatusCode.DeadlineExceeded, "deadline exceeded");
            }, (call, stream.Aborted));
            expiry.CancelAfter(t);
        }
        try
        {
            ReadOnlySequence<byte> body;
            try
            {
                body = await stream.ReadBodyAsync().WaitAsync(token).ConfigureAwait(false);
            }
            catch (RequestBodyTooLargeException)
            {
                return (StatusCode.ResourceExhausted,
                    $"request message exceeds the maximum receive size of {_options.MaxReceiveMessageSize} bytes");
            }
            catch (RequestBufferFullException e)
            {
                return (StatusCode.ResourceExhausted, e.Message);
            }
            catch (RequestBodyTimeoutException e)
            {
                return (StatusCode.DeadlineExceeded, e.Message);
            }
            if (!TryReadSingleMessage(body, out var payload, out var error)) return (error.Code, error.Message);
            var context = new ServerCallContext(stream.Path, stream.Authority, stream.RequestHeaders, deadline, token);
            var request = method.ParseRequest(payload);
            // Parsed: the body's memory goes back, and with it the connection window it held.
            await stream.ReleaseBodyAsync().ConfigureAwait(false);
            await method.InvokeAsync(request, call, context).ConfigureAwait(false);
            return (StatusCode.OK, null);
        }
        catch (RpcException e)
        {
            return (e.StatusCode, e.Detail);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            if (stream.Aborted.IsCancellationRequested) return (StatusCode.Cancelled, "the client cancelled the call");
            if (expiry?.IsCancellationRequested == true) return (StatusCode.DeadlineExceeded, "deadline exceeded");
            return (StatusCode.Unavailable, "the server is shutting down");
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            return (StatusCode.Internal, $"cannot parse {method.Descriptor.InputType.Name}: {e.Message}");
        }
        catch (Exception e)
        {
            if (MapException?.Invoke(e) is { } mapped) return (mapped.StatusCode, mapped.Detail);
            return (StatusCode.Unknown, e.Message);
        }
    }

    private string UnknownPathMessage(string path)
    {
        foreach (var (prefix, message) in _retiredPrefixes)
        {
            if (!path.StartsWith(prefix, StringComparison.Ordinal)) continue;
            RetiredPathCalled?.Invoke(path);
            return message;
        }
        return $"unknown method {path}";
    }

    /// <summary>Unary and server-streaming requests carry exactly one length-prefixed message.</summary>
    private bool TryReadSingleMessage(ReadOnlySequence<byte> body, out ReadOnlySequence<byte> payload, out (StatusCode Code, string Message) error)
    {
        payload = default;
        error = default;
        if (body.Length < GrpcProtocol.MessagePrefixLength)
        {
            error = (StatusCode.Internal, $"request body of {body.Length} bytes holds no complete gRPC message");
            return false;
        }
        Span<byte> prefix = stackalloc byte[GrpcProtocol.MessagePrefixLength];
        body.Slice(0, GrpcProtocol.MessagePrefixLength).CopyTo(prefix);
        if (prefix[0] != 0)
        {
            error = (StatusCode.Unimplemented, "compressed request messages are not supported; send grpc-encoding identity");
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
        if (length > _options.MaxReceiveMessageSize)
        {
            error = (StatusCode.ResourceExhausted, $"request message of {length} bytes exceeds the maximum receive size of {_options.MaxReceiveMessageSize} bytes");
            return false;
        }
        if (body.Length - GrpcProtocol.MessagePrefixLength != length)
        {
            error = (StatusCode.Internal, $"request body holds {body.Length - GrpcProtocol.MessagePrefixLength} bytes after a message prefix announcing {length}");
            return false;
        }
        payload = body.Slice(GrpcProtocol.MessagePrefixLength);
        return true;
    }
}
