using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Microsoft.Extensions.Logging;

namespace Hull.Grpc.Server;

/// <summary>
/// gRPC over <see cref="Http2Server"/>, behind Grpc.Core.Api: generated code registers its methods here
/// (<c>Xxx.BindService(server, implementation)</c>) and calls are dispatched by path; unknown paths answer UNIMPLEMENTED.
/// Unary and server-streaming methods are served.
/// </summary>
public sealed class GrpcServer : ServiceBinderBase, IAsyncDisposable
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
    public Func<Exception, Status?>? MapException { get; set; }

    /// <summary>Called when a path under a retired prefix is hit (e.g. to record a deprecation).</summary>
    public Action<string>? RetiredPathCalled { get; set; }

    public int ConnectionCount => _transport.ConnectionCount;

    /// <summary>The connections open now.</summary>
    public IReadOnlyList<Http2Connection> Connections => _transport.Connections;

    /// <summary>
    /// The calls being served now, oldest first, from the open streams whose call telemetry began (so empty while
    /// metrics and tracing are off): nothing is kept per call for this list.
    /// </summary>
    public IReadOnlyList<InFlightCall> InFlightCalls()
    {
        var now = DateTimeOffset.UtcNow;
        long ticks = System.Diagnostics.Stopwatch.GetTimestamp();
        return Connections.SelectMany(c => c.OpenStreams)
            .Where(s => s.CallStarted != 0 && !s.ResponseCompleted)
            .Select(s => new InFlightCall(s.Path, s.Peer, s.Id, now - System.Diagnostics.Stopwatch.GetElapsedTime(s.CallStarted, ticks)))
            .OrderBy(c => c.StartedAt)
            .ToArray();
    }

    /// <summary>Metrics, spans and the in-flight list of every call.</summary>
    public ServerCallTelemetry Telemetry { get; } = new();

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
        Add(method, new UnaryMethod<TRequest, TResponse>(method, handler ?? throw new ArgumentNullException(nameof(handler))));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        Add(method, new ServerStreamingMethod<TRequest, TResponse>(method, handler ?? throw new ArgumentNullException(nameof(handler))));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        Add(method, new UnsupportedMethod(method));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        Add(method, new UnsupportedMethod(method));

    private void Add(IMethod method, ServerMethod bound)
    {
        if (!_methods.TryAdd(method.FullName, bound)) throw new InvalidOperationException($"method {method.FullName} is registered twice");
        Telemetry.AddMethod(method.FullName);
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
        var telemetry = Telemetry.Begin(stream);
        var (status, trailers) = await RunCallAsync(stream, call).ConfigureAwait(false);
        if (stream.Aborted.IsCancellationRequested && !call.Completed)
            status = new Status(StatusCode.Cancelled, "the client cancelled the call");
        else
            await call.CompleteAsync(status, trailers).ConfigureAwait(false);
        telemetry.End(status.StatusCode, status.Detail);
        CallCompleted?.Invoke(new CallRecord(stream.Path, status.StatusCode, status.Detail, Stopwatch.GetElapsedTime(started)));
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

    /// <summary>Runs one call; the status that ends it, with the trailers its handler added, if any.</summary>
    private async ValueTask<(Status, Metadata?)> RunCallAsync(Http2Stream stream, ServerCall call)
    {
        if (!_methods.TryGetValue(stream.Path, out var method))
            return (new Status(StatusCode.Unimplemented, UnknownPathMessage(stream.Path)), null);
        if (method.Unsupported is { } unsupported) return (new Status(StatusCode.Unimplemented, unsupported), null);

        TimeSpan? timeout = null;
        if (stream.GetHeader(GrpcProtocol.TimeoutHeader) is { } rawTimeout)
        {
            if (!GrpcProtocol.TryParseTimeout(rawTimeout, out var parsed))
                return (new Status(StatusCode.Internal, $"malformed grpc-timeout \"{rawTimeout}\""), null);
            // Valid values reach 99999999H; beyond what CancelAfter can wait (~49 days; DateTime overflows too)
            // a deadline never fires, so it is no deadline.
            if (parsed <= MaxTimeout) timeout = parsed;
        }
        // The call's token: the stream's own when nothing else can end it (a unary call without a deadline,
        // the common case, then costs no CancellationTokenSource), else one linked to the deadline and,
        // for server streams, to shutdown.
        using var expiry = timeout is null ? null : new CancellationTokenSource();
        using var cancellation = method.IsServerStreaming
            ? expiry is null
                ? CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, _shutdown.Token)
                : CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, expiry.Token, _shutdown.Token)
            : expiry is null ? null : CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted, expiry.Token);
        var token = cancellation?.Token ?? stream.Aborted;
        var deadline = DateTime.MaxValue;
        if (timeout is { } t && expiry is not null)
        {
            deadline = DateTime.UtcNow + t;
            // At the deadline the client is told at once, even if the handler has not noticed yet.
            expiry.Token.UnsafeRegister(static s =>
            {
                var (c, aborted) = ((ServerCall, CancellationToken))s!;
                if (!aborted.IsCancellationRequested) _ = c.CompleteAsync(new Status(StatusCode.DeadlineExceeded, "deadline exceeded"));
            }, (call, stream.Aborted));
            expiry.CancelAfter(t);
        }
        var context = new GrpcCallContext(stream, call, deadline, token);
        try
        {
            ReadOnlySequence<byte> body;
            try
            {
                body = await stream.ReadBodyAsync().WaitAsync(token).ConfigureAwait(false);
            }
            catch (RequestBodyTooLargeException)
            {
                return (new Status(StatusCode.ResourceExhausted,
                    $"request message exceeds the maximum receive size of {_options.MaxReceiveMessageSize} bytes"), null);
            }
            catch (RequestBufferFullException e)
            {
                return (new Status(StatusCode.ResourceExhausted, e.Message), null);
            }
            catch (RequestBodyTimeoutException e)
            {
                return (new Status(StatusCode.DeadlineExceeded, e.Message), null);
            }
            if (!TryReadSingleMessage(body, out var payload, out var error)) return (error, null);
            object request;
            try
            {
                request = method.ParseRequest(payload);
            }
            catch (Google.Protobuf.InvalidProtocolBufferException e)
            {
                // grpc-go's answer to a body that is not the method's message; the connection goes on.
                return (new Status(StatusCode.Internal, $"cannot parse {method.RequestType}: {e.Message}"), null);
            }
            // Parsed: the body's memory goes back, and with it the connection window it held.
            await stream.ReleaseBodyAsync().ConfigureAwait(false);
            await method.InvokeAsync(request, call, context).ConfigureAwait(false);
            return (context.Status, context.AddedTrailers);
        }
        catch (RpcException e)
        {
            var status = e.StatusCode == StatusCode.Unimplemented && string.IsNullOrEmpty(e.Status.Detail)
                // What a generated base class answers for a method the service does not override.
                ? new Status(StatusCode.Unimplemented, $"method {stream.Path.TrimStart('/')} is not implemented by Hull yet")
                : e.Status;
            return (status, Merge(context.AddedTrailers, e.Trailers));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            if (stream.Aborted.IsCancellationRequested) return (new Status(StatusCode.Cancelled, "the client cancelled the call"), null);
            if (expiry?.IsCancellationRequested == true) return (new Status(StatusCode.DeadlineExceeded, "deadline exceeded"), null);
            return (new Status(StatusCode.Unavailable, "the server is shutting down"), null);
        }
        catch (Exception e)
        {
            return (MapException?.Invoke(e) ?? new Status(StatusCode.Unknown, e.Message), context.AddedTrailers);
        }
    }

    private static Metadata? Merge(Metadata? first, Metadata second)
    {
        if (second.Count == 0) return first;
        if (first is null) return second;
        var all = new Metadata();
        foreach (var entry in first) all.Add(entry);
        foreach (var entry in second) all.Add(entry);
        return all;
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
    private bool TryReadSingleMessage(ReadOnlySequence<byte> body, out ReadOnlySequence<byte> payload, out Status error)
    {
        payload = default;
        error = default;
        if (body.Length < GrpcProtocol.MessagePrefixLength)
        {
            error = new Status(StatusCode.Internal, $"request body of {body.Length} bytes holds no complete gRPC message");
            return false;
        }
        Span<byte> prefix = stackalloc byte[GrpcProtocol.MessagePrefixLength];
        body.Slice(0, GrpcProtocol.MessagePrefixLength).CopyTo(prefix);
        if (prefix[0] != 0)
        {
            error = new Status(StatusCode.Unimplemented, "compressed request messages are not supported; send grpc-encoding identity");
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
        if (length > _options.MaxReceiveMessageSize)
        {
            error = new Status(StatusCode.ResourceExhausted, $"request message of {length} bytes exceeds the maximum receive size of {_options.MaxReceiveMessageSize} bytes");
            return false;
        }
        if (body.Length - GrpcProtocol.MessagePrefixLength != length)
        {
            error = new Status(StatusCode.Internal, $"request body holds {body.Length - GrpcProtocol.MessagePrefixLength} bytes after a message prefix announcing {length}");
            return false;
        }
        payload = body.Slice(GrpcProtocol.MessagePrefixLength);
        return true;
    }
}
