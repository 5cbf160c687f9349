using System.Globalization;
using Grpc.Core;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Marshalling;

namespace Hull.Grpc.Server;

/// <summary>
/// The response side of one gRPC call: response headers, length-prefixed messages and the status
/// trailers, written once and in order even when a deadline races the handler.
/// </summary>
internal sealed class ServerCall
{
    private static readonly HeaderField[] ResponseHeaders =
    [
        new(":status", "200"),
        new("content-type", GrpcProtocol.ContentType),
        new("grpc-accept-encoding", "identity"),
    ];
    private static readonly HeaderField[] OkTrailers = [new(GrpcProtocol.StatusTrailer, "0")];

    private readonly Http2Stream _stream;
    private readonly int _maxSendMessageSize;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private bool _completed;

    public ServerCall(Http2Stream stream, int maxSendMessageSize)
    {
        _stream = stream;
        _maxSendMessageSize = maxSendMessageSize;
    }

    public bool Completed => Volatile.Read(ref _completed);

    /// <summary>Sends the response headers now, with the handler's metadata (ServerCallContext.WriteResponseHeadersAsync).</summary>
    public async Task WriteHeadersAsync(Metadata metadata, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_completed || _stream.HeadersSent) throw new InvalidOperationException("response headers were already sent for this call");
            var headers = new List<HeaderField>(ResponseHeaders);
            GrpcMetadata.AppendTo(headers, metadata);
            await _stream.SendAsync(headers, ReadOnlyMemory<byte>.Empty, trailers: null, cancellationToken).ConfigureAwait(false);
        }
        finally { _sendLock.Release(); }
    }

    /// <summary>
    /// Sends one message through the method's marshaller; for unary calls <paramref name="trailers"/> (see
    /// <see cref="FinalTrailers"/>) end the call in the same write.
    /// </summary>
    public async Task WriteMessageAsync<T>(Marshaller<T> marshaller, T message, IReadOnlyList<HeaderField>? trailers, CancellationToken cancellationToken)
    {
        using var buffer = new MessageBuffer(GrpcProtocol.MessagePrefixLength, _maxSendMessageSize);
        marshaller.ContextualSerializer(message, buffer);
        var frame = buffer.Frame;
        GrpcProtocol.WritePrefix(frame.Span, buffer.PayloadLength);
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_completed) return;
            // Headers go out with the first DATA, which may wait for flow-control window: the stream knows
            // whether they were sent. If the wait is cancelled (deadline), the call is not complete yet, so
            // CompleteAsync can still send the status.
            var headers = _stream.HeadersSent ? null : ResponseHeaders;
            await _stream.SendAsync(headers, frame, trailers, cancellationToken).ConfigureAwait(false);
            if (trailers is not null) _completed = true;
        }
        finally { _sendLock.Release(); }
    }

    /// <summary>The trailers that end a call which returned normally: the status and trailers its handler set.</summary>
    public static IReadOnlyList<HeaderField> FinalTrailers(HullServerCallContext context) =>
        context.Status.StatusCode == StatusCode.OK && context.AddedTrailers is null
            ? OkTrailers
            : Trailers(context.Status, context.AddedTrailers, withHeaders: false);

    /// <summary>Ends the call with a status; the first completion wins, later ones are ignored.</summary>
    public async Task CompleteAsync(Status status, Metadata? trailers = null)
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_completed) return;
            _completed = true;
            // Without headers sent yet, this is a trailers-only response.
            await _stream.SendAsync(null, ReadOnlyMemory<byte>.Empty, Trailers(status, trailers, withHeaders: !_stream.HeadersSent)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        finally { _sendLock.Release(); }
    }

    private static List<HeaderField> Trailers(Status status, Metadata? metadata, bool withHeaders)
    {
        var trailers = new List<HeaderField>(5 + (metadata?.Count ?? 0));
        if (withHeaders) trailers.AddRange(ResponseHeaders);
        trailers.Add(new(GrpcProtocol.StatusTrailer, ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture)));
        if (!string.IsNullOrEmpty(status.Detail)) trailers.Add(new(GrpcProtocol.MessageTrailer, GrpcProtocol.EncodeMessage(status.Detail)));
        if (metadata is not null) GrpcMetadata.AppendTo(trailers, metadata);
        return trailers;
    }
}
