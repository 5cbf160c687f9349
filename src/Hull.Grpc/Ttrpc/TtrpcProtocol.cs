using System.Buffers.Binary;

namespace Hull.Grpc.Ttrpc;

/// <summary>ttrpc message types (containerd/ttrpc PROTOCOL.md).</summary>
public enum TtrpcMessageType : byte
{
    Request = 1,
    Response = 2,
    Data = 3,
}

/// <summary>
/// The ttrpc wire format: every message is a 10-byte header (uint32 BE data length, uint32 BE stream id,
/// uint8 type, uint8 flags) and its data; data is at most 4 MiB. Clients number their streams with odd ids.
/// </summary>
public static class TtrpcProtocol
{
    public const int HeaderLength = 10;
    public const int MaxMessageLength = 4 << 20;

    public const byte FlagRemoteClosed = 0x1;
    public const byte FlagRemoteOpen = 0x2;
    public const byte FlagNoData = 0x4;

    /// <summary>The text upstream uses for a message over the limit (channel.go); clients match on the code, people on the text.</summary>
    public static string OversizedMessage(long length) =>
        $"message length {length} exceed maximum message size of {MaxMessageLength}";

    public static string FullMethod(string service, string method) => $"/{service}/{method}";
}

/// <summary>One message header as read from or written to the wire.</summary>
public readonly record struct TtrpcFrameHeader(uint Length, uint StreamId, TtrpcMessageType Type, byte Flags)
{
    public static TtrpcFrameHeader Read(ReadOnlySpan<byte> bytes) => new(
        BinaryPrimitives.ReadUInt32BigEndian(bytes),
        BinaryPrimitives.ReadUInt32BigEndian(bytes[4..]),
        (TtrpcMessageType)bytes[8],
        bytes[9]);

    public void Write(Span<byte> bytes)
    {
        BinaryPrimitives.WriteUInt32BigEndian(bytes, Length);
        BinaryPrimitives.WriteUInt32BigEndian(bytes[4..], StreamId);
        bytes[8] = (byte)Type;
        bytes[9] = Flags;
    }
}
