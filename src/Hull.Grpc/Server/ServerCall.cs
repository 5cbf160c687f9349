using System.Buffers;
using Google.Protobuf;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;

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

    /// <summary>Sends one message; for unary calls <paramref name="thenOk"/> adds the OK trailers in the same write.</summary>
    public async Task WriteMessageAsync(IMessage message, bool thenOk, CancellationToken cancellationToken)
    {
        int size = message.CalculateSize();
        if (size > _maxSendMessageSize)
            throw new RpcException(StatusCode.ResourceExhausted,
                $"response message of {size} bytes exceeds the maximum send size of {_maxSendMessageSize} bytes");
        var buffer = ArrayPool<byte>.Shared.Rent(size + GrpcProtocol.MessagePrefixLength);
        try
        {
            GrpcProtocol.WritePrefix(buffer, size);
            message.WriteTo(buffer.AsSpan(GrpcProtocol.MessagePrefixLength, size));
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_completed) return;
                // Headers go out with the first DATA, which may wait for flow-control window: the stream knows
                // whether they were sent. If the wait is cancelled (deadline), the call is not complete yet, so
                // CompleteAsync can still send the status.
                var headers = _stream.HeadersSent ? null : ResponseHeaders;
                await _stream.SendAsync(headers, buffer.AsMemory(0, size + GrpcProtocol.MessagePrefixLength),
                    thenOk ? OkTrailers : null, cancellationToken).ConfigureAwait(false);
                if (thenOk) _completed = true;
            }
            finally { _sendLock.Release(); }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Ends the call with a status; the first completion wins, later ones are ignored.</summary>
    public async Task CompleteAsync(StatusCode code, string? message)
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_completed) return;
            _completed = true;
            var trailers = new List<HeaderField>(5);
            if (!_stream.HeadersSent) trailers.AddRange(ResponseHeaders); // trailers-only response
            trailers.Add(new(GrpcProtocol.StatusTrailer, ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (!string.IsNullOrEmpty(message)) trailers.Add(new(GrpcProtocol.MessageTrailer, GrpcProtocol.EncodeMessage(message)));
            await _stream.SendAsync(null, ReadOnlyMemory<byte>.Empty, trailers).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        finally { _sendLock.Release(); }
    }
}
