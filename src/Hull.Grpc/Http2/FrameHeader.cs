using System.Buffers;
using System.Buffers.Binary;

namespace Hull.Grpc.Http2;

/// <summary>The 9-octet header in front of every frame (RFC 9113 4.1).</summary>
public readonly record struct FrameHeader(int Length, FrameType Type, FrameFlags Flags, int StreamId)
{
    public bool Has(FrameFlags flag) => (Flags & flag) != 0;

    public static FrameHeader Parse(ReadOnlySpan<byte> header)
    {
        int length = (header[0] << 16) | (header[1] << 8) | header[2];
        // The reserved high bit of the stream identifier is ignored on receipt.
        int streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7FFF_FFFF);
        return new FrameHeader(length, (FrameType)header[3], (FrameFlags)header[4], streamId);
    }

    public void Write(Span<byte> destination)
    {
        destination[0] = (byte)(Length >> 16);
        destination[1] = (byte)(Length >> 8);
        destination[2] = (byte)Length;
        destination[3] = (byte)Type;
        destination[4] = (byte)Flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], (uint)StreamId & 0x7FFF_FFFF);
    }
}

/// <summary>Cuts complete frames off a byte sequence; it never interprets payloads.</summary>
public static class FrameReader
{
    /// <summary>
    /// Returns true and advances <paramref name="buffer"/> past one frame when a whole frame is buffered.
    /// A frame longer than <paramref name="maxFrameSize"/> is a connection error (RFC 9113 4.2).
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameSize,
        out FrameHeader header, out ReadOnlySequence<byte> payload)
    {
        header = default;
        payload = default;
        if (buffer.Length < Http2Limits.FrameHeaderLength) return false;

        Span<byte> raw = stackalloc byte[Http2Limits.FrameHeaderLength];
        buffer.Slice(0, Http2Limits.FrameHeaderLength).CopyTo(raw);
        var parsed = FrameHeader.Parse(raw);
        if (parsed.Length > maxFrameSize)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError,
                $"{parsed.Type} frame of {parsed.Length} octets exceeds SETTINGS_MAX_FRAME_SIZE {maxFrameSize}");
        long total = Http2Limits.FrameHeaderLength + (long)parsed.Length;
        if (buffer.Length < total) return false;

        header = parsed;
        payload = buffer.Slice(Http2Limits.FrameHeaderLength, parsed.Length);
        buffer = buffer.Slice(total);
        return true;
    }

    /// <summary>Strips the padding of a PADDED DATA or HEADERS frame (RFC 9113 6.1, 6.2).</summary>
    public static ReadOnlySequence<byte> RemovePadding(FrameHeader header, ReadOnlySequence<byte> payload)
    {
        if (!header.Has(FrameFlags.Padded)) return payload;
        if (payload.Length < 1)
            throw new Http2ConnectionException(Http2ErrorCode.FrameSizeError, $"padded {header.Type} frame has no pad length");
        int padLength = payload.FirstSpan[0];
        if (padLength >= payload.Length)
            throw new Http2ConnectionException(Http2ErrorCode.ProtocolError,
                $"{header.Type} frame pad length {padLength} is not less than its payload of {payload.Length} octets");
        return payload.Slice(1, payload.Length - 1 - padLength);
    }

    public static uint ReadUInt32(ReadOnlySequence<byte> payload, int offset)
    {
        Span<byte> raw = stackalloc byte[4];
        payload.Slice(offset, 4).CopyTo(raw);
        return BinaryPrimitives.ReadUInt32BigEndian(raw);
    }
}
