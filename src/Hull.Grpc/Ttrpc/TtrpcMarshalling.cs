namespace Hull.Grpc.Ttrpc;

using System.Buffers;
using global::Grpc.Core;

/// <summary>
/// Runs the marshallers of generated stubs. They are contextual (they write into and read from a context), so ttrpc
/// supplies the two small contexts here instead of the simple byte[] delegates, which generated code does not provide.
/// </summary>
internal static class TtrpcMarshalling
{
    public static byte[] Serialize<T>(Marshaller<T> marshaller, T value)
    {
        var context = new Serialization();
        marshaller.ContextualSerializer(value, context);
        return context.Result ?? throw new InvalidOperationException("marshaller did not complete the message");
    }

    public static T Deserialize<T>(Marshaller<T> marshaller, ReadOnlyMemory<byte> payload) =>
        marshaller.ContextualDeserializer(new Deserialization(payload));

    private sealed class Serialization : SerializationContext
    {
        private ArrayBufferWriter<byte>? _writer;

        public byte[]? Result { get; private set; }

        public override void Complete(byte[] payload) => Result = payload;

        public override void SetPayloadLength(int payloadLength) => _writer = new ArrayBufferWriter<byte>(Math.Max(1, payloadLength));

        public override IBufferWriter<byte> GetBufferWriter() => _writer ??= new ArrayBufferWriter<byte>();

        public override void Complete() => Result = _writer is null ? [] : _writer.WrittenSpan.ToArray();
    }

    private sealed class Deserialization(ReadOnlyMemory<byte> payload) : DeserializationContext
    {
        public override int PayloadLength => payload.Length;

        public override byte[] PayloadAsNewBuffer() => payload.ToArray();

        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);
    }
}
