using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Hull.Grpc.Client;

/// <summary>
/// A gRPC client over HTTP/2 with prior knowledge, on a unix socket or TCP, built on SocketsHttpHandler.
/// Calls are addressed by the generated <see cref="MethodDescriptor"/>, never by hand-written paths.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
    private readonly HttpClient _http;
    private readonly Uri _baseAddress;

    private GrpcChannel(SocketsHttpHandler handler, Uri baseAddress)
    {
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _baseAddress = baseAddress;
    }

    public int MaxReceiveMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>A channel to a unix socket; <paramref name="authority"/> is what :authority carries.</summary>
    public static GrpcChannel ForUnixSocket(string path, string authority = "localhost")
    {
        var handler = NewHandler();
        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new IOException(File.Exists(path) ? $"connect to {path}: {e.Message}" : $"socket {path} does not exist", e);
            }
        };
        return new GrpcChannel(handler, new Uri($"http://{authority}"));
    }

    public static GrpcChannel ForTcp(IPEndPoint endPoint) =>
        new(NewHandler(), new Uri($"http://{endPoint}"));

    private static SocketsHttpHandler NewHandler() => new()
    {
        EnableMultipleHttp2Connections = false,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        UseProxy = false,
        AllowAutoRedirect = false,
    };

    public static string PathOf(MethodDescriptor method) => $"/{method.Service.FullName}/{method.Name}";

    public async Task<TResponse> UnaryAsync<TResponse>(MethodDescriptor method, IMessage request, TimeSpan? timeout = null,
        CancellationToken cancellationToken = default) where TResponse : IMessage<TResponse>, new()
    {
        using var deadline = StartDeadline(timeout, cancellationToken);
        try
        {
            using var response = await SendAsync(method, request, timeout, deadline.Token).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
            var first = await ReadMessageAsync<TResponse>(stream, deadline.Token).ConfigureAwait(false);
            // Drain to the end so trailers are available.
            while (await ReadMessageAsync<TResponse>(stream, deadline.Token).ConfigureAwait(false) is not null) { }
            ThrowIfError(response);
            return first ?? throw new RpcException(StatusCode.Internal, $"{PathOf(method)} returned OK without a response message");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw DeadlineExceeded(method, timeout);
        }
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TResponse>(MethodDescriptor method, IMessage request,
        TimeSpan? timeout = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TResponse : IMessage<TResponse>, new()
    {
        using var deadline = StartDeadline(timeout, cancellationToken);
        using var response = await WithDeadline(SendAsync(method, request, timeout, deadline.Token)).ConfigureAwait(false);
        var stream = await WithDeadline(response.Content.ReadAsStreamAsync(deadline.Token)).ConfigureAwait(false);
        while (await WithDeadline(ReadMessageAsync<TResponse>(stream, deadline.Token)).ConfigureAwait(false) is { } message)
            yield return message;
        ThrowIfError(response);

        // A yield cannot sit in a try with a catch, so each await gets the deadline translation on its own.
        async Task<T> WithDeadline<T>(Task<T> task)
        {
            try { return await task.ConfigureAwait(false); }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw DeadlineExceeded(method, timeout);
            }
        }
    }

    /// <summary>
    /// grpc-timeout only informs the server; the client enforces the deadline itself too, so a server that
    /// never answers cannot hold a call forever.
    /// </summary>
    private static CancellationTokenSource StartDeadline(TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Timers wait at most ~49 days; a longer deadline never fires.
        if (timeout is { } t && t <= MaxTimer) source.CancelAfter(t < TimeSpan.Zero ? TimeSpan.Zero : t);
        return source;
    }

    private static RpcException DeadlineExceeded(MethodDescriptor method, TimeSpan? timeout) =>
        new(StatusCode.DeadlineExceeded, $"{PathOf(method)}: deadline of {timeout} exceeded");

    private async Task<HttpResponseMessage> SendAsync(MethodDescriptor method, IMessage request, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var payload = new byte[GrpcProtocol.MessagePrefixLength + request.CalculateSize()];
        GrpcProtocol.WritePrefix(payload, payload.Length - GrpcProtocol.MessagePrefixLength);
        request.WriteTo(payload.AsSpan(GrpcProtocol.MessagePrefixLength));
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_baseAddress, PathOf(method)))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(payload),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        message.Headers.TryAddWithoutValidation("te", "trailers");
        if (timeout is { } t) message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(t));
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            var cause = e.InnerException is IOException io ? io.Message : e.Message;
            throw new RpcException(StatusCode.Unavailable, $"{PathOf(method)}: {cause}");
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            response.Dispose();
            throw new RpcException(StatusCode.Internal, $"{PathOf(method)}: HTTP status {(int)response.StatusCode}");
        }
        // A trailers-only response carries the status in its headers.
        if (StatusFrom(response.Headers) is { } status && status.Code != StatusCode.OK)
        {
            response.Dispose();
            throw new RpcException(status.Code, status.Message);
        }
        return response;
    }

    private async Task<TResponse?> ReadMessageAsync<TResponse>(Stream stream, CancellationToken cancellationToken)
        where TResponse : IMessage<TResponse>, new()
    {
        var prefix = new byte[GrpcProtocol.MessagePrefixLength];
        int read = await stream.ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0) return default;
        if (read < prefix.Length) throw new RpcException(StatusCode.Internal, "response ended inside a message prefix");
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(1));
        if (length > MaxReceiveMessageSize || length < 0)
            throw new RpcException(StatusCode.ResourceExhausted, $"response message of {(uint)length} bytes exceeds the client's limit of {MaxReceiveMessageSize}");
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken).ConfigureAwait(false);
        var message = new TResponse();
        message.MergeFrom(body);
        return message;
    }

    private static void ThrowIfError(HttpResponseMessage response)
    {
        var status = StatusFrom(response.TrailingHeaders) ?? StatusFrom(response.Headers)
            ?? throw new RpcException(StatusCode.Internal, "response ended without grpc-status");
        if (status.Code != StatusCode.OK) throw new RpcException(status.Code, status.Message);
    }

    private static (StatusCode Code, string Message)? StatusFrom(HttpHeaders headers)
    {
        if (!headers.TryGetValues(GrpcProtocol.StatusTrailer, out var values)) return null;
        var code = (StatusCode)int.Parse(values.First(), System.Globalization.CultureInfo.InvariantCulture);
        string message = headers.TryGetValues(GrpcProtocol.MessageTrailer, out var m) ? GrpcProtocol.DecodeMessage(m.First()) : "";
        return (code, message);
    }

    public void Dispose() => _http.Dispose();
}
