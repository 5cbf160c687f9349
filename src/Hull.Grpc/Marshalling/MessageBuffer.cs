using System.Buffers;
using Grpc.Core;

namespace Hull.Grpc.Marshalling;

/// <summary>
/// Runs a generated marshaller's contextual serializer into one buffer rented from the shared pool, with
/// <c>headroom</c> bytes left free in front for the transport's frame prefix, so a message is written once and sent
/// without a copy. Generated Protobuf marshallers announce the size first (<see cref="SetPayloadLength"/>), which is
/// where a message over the limit is refused before anything is written. Dispose returns the buffer.
/// </summary>
internal sealed class MessageBuffer(int headroom, int maxPayloadLength = int.MaxValue) : SerializationContext, IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer = [];
    private int _length;
    private bool _completed;

    /// <summary>The headroom followed by the payload: what goes on the wire once the caller has filled in the prefix.</summary>
    public Memory<byte> Frame => _completed
        ? _buffer.AsMemory(0, headroom + _length)
        : throw new InvalidOperationException("the marshaller did not complete the message");

    public int PayloadLength => _length;

    public override void SetPayloadLength(int payloadLength)
    {
        CheckLength(payloadLength);
        Reserve(payloadLength);
    }

    public override IBufferWriter<byte> GetBufferWriter() => this;

    public override void Complete() => _completed = true;

    /// <summary>Simple (non-contextual) marshallers hand over a finished array.</summary>
    public override void Complete(byte[] payload)
    {
        CheckLength(payload.Length);
        Reserve(payload.Length);
        payload.CopyTo(_buffer.AsSpan(headroom));
        _length = payload.Length;
        _completed = true;
    }

    public void Advance(int count)
    {
        CheckLength(_length + count);
        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(_length + Math.Max(sizeHint, 1));
        return _buffer.AsMemory(headroom + _length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(_length + Math.Max(sizeHint, 1));
        return _buffer.AsSpan(headroom + _length);
    }

    private void CheckLength(long length)
    {
        if (length > maxPayloadLength)
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"response message of {length} bytes exceeds the maximum send size of {maxPayloadLength} bytes"));
    }

    private void Reserve(int payloadLength)
    {
        int needed = headroom + payloadLength;
        if (needed <= _buffer.Length) return;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        if (_buffer.Length > 0)
        {
            _buffer.AsSpan(0, headroom + _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = bigger;
    }

    public void Dispose()
    {
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}

/// <summary>A received message's payload, for a generated marshaller's contextual deserializer (it parses the sequence in place).</summary>
internal sealed class PayloadReader(ReadOnlySequence<byte> payload) : DeserializationContext
{
    public PayloadReader(ReadOnlyMemory<byte> payload) : this(new ReadOnlySequence<byte>(payload)) { }

    public override int PayloadLength => (int)payload.Length;

    public override byte[] PayloadAsNewBuffer() => payload.ToArray();

    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => payload;
}

/// <summary>Runs generated marshallers where a transport needs whole arrays (ttrpc wraps each payload in an envelope message).</summary>
internal static class PayloadCodec
{
    public static byte[] ToArray<T>(Marshaller<T> marshaller, T value)
    {
        using var buffer = new MessageBuffer(headroom: 0);
        marshaller.ContextualSerializer(value, buffer);
        return buffer.Frame.ToArray();
    }

    public static T Parse<T>(Marshaller<T> marshaller, ReadOnlyMemory<byte> payload) =>
        marshaller.ContextualDeserializer(new PayloadReader(payload));
}
