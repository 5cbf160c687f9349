using System.Buffers.Binary;

namespace Hull.Streaming.Spdy;

/// <summary>
/// Serializes SPDY/3.1 frames and deflates header blocks with the session's persistent send-side
/// zlib context. Writes are serialized by one lock so header blocks are compressed in the order
/// they go on the wire. Knows nothing of streams or flow control.
/// </summary>
public sealed class SpdyFrameWriter : IDisposable
{
    private readonly Stream _output;
    private readonly SpdyHeaderCompressor _deflater = new();
    private readonly SemaphoreSlim _lock = new(1, 1);

    public SpdyFrameWriter(Stream output) => _output = output;

    /// <summary>Called after every frame written (the session's idle timer).</summary>
    public Action? OnWrite { get; set; }

    public ValueTask WriteAsync(SpdyFrame frame, CancellationToken ct = default) => WriteAsync(frame, null, ct);

    /// <summary>
    /// Writes the frame <paramref name="make"/> returns, called under the write lock: for a frame whose content
    /// depends on its place on the wire (a new stream's id must be larger than every id sent before it).
    /// </summary>
    public ValueTask WriteAsync(Func<SpdyFrame> make, CancellationToken ct = default) => WriteAsync(null, make, ct);

    private async ValueTask WriteAsync(SpdyFrame? frame, Func<SpdyFrame>? make, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var bytes = Serialize(frame ?? make!());
            await _output.WriteAsync(bytes, ct).ConfigureAwait(false);
            await _output.FlushAsync(ct).ConfigureAwait(false);
        }
        finally { _lock.Release(); }
        OnWrite?.Invoke();
    }

    /// <summary>The wire bytes of one frame. Header frames advance the compression context.</summary>
    public byte[] Serialize(SpdyFrame frame)
    {
        switch (frame)
        {
            case SpdyDataFrame d:
            {
                var b = new byte[8 + d.Data.Length];
                BinaryPrimitives.WriteUInt32BigEndian(b, d.StreamId & 0x7FFFFFFF);
                WriteFlagsLength(b, d.Fin ? SpdyFlags.Fin : (byte)0, d.Data.Length);
                d.Data.Span.CopyTo(b.AsSpan(8));
                return b;
            }
            case SpdySynStreamFrame s:
            {
                var h = Compress(s.Headers);
                var b = Control(SpdyFrameType.SynStream, s.Flags, 10 + h.Length);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), s.StreamId & 0x7FFFFFFF);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), s.AssociatedStreamId & 0x7FFFFFFF);
                b[16] = (byte)(s.Priority << 5);
                b[17] = s.Slot;
                h.CopyTo(b, 18);
                return b;
            }
            case SpdySynReplyFrame r:
                return StreamHeaders(SpdyFrameType.SynReply, r.StreamId, r.Fin, r.Headers);
            case SpdyHeadersFrame h:
                return StreamHeaders(SpdyFrameType.Headers, h.StreamId, h.Fin, h.Headers);
            case SpdyRstStreamFrame r:
            {
                var b = Control(SpdyFrameType.RstStream, 0, 8);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), r.StreamId & 0x7FFFFFFF);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), (uint)r.Status);
                return b;
            }
            case SpdySettingsFrame s:
            {
                var b = Control(SpdyFrameType.Settings, s.ClearSettings ? SpdyFlags.ClearSettings : (byte)0, 4 + 8 * s.Settings.Count);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), (uint)s.Settings.Count);
                for (int i = 0; i < s.Settings.Count; i++)
                {
                    var e = b.AsSpan(12 + 8 * i);
                    BinaryPrimitives.WriteUInt32BigEndian(e, (uint)s.Settings[i].Id & 0xFFFFFF);
                    e[0] = s.Settings[i].Flags;
                    BinaryPrimitives.WriteUInt32BigEndian(e[4..], s.Settings[i].Value);
                }
                return b;
            }
            case SpdyPingFrame p:
            {
                var b = Control(SpdyFrameType.Ping, 0, 4);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), p.Id);
                return b;
            }
            case SpdyGoAwayFrame g:
            {
                var b = Control(SpdyFrameType.GoAway, 0, 8);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), g.LastGoodStreamId & 0x7FFFFFFF);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), (uint)g.Status);
                return b;
            }
            case SpdyWindowUpdateFrame w:
            {
                var b = Control(SpdyFrameType.WindowUpdate, 0, 8);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), w.StreamId & 0x7FFFFFFF);
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(12), w.DeltaWindowSize & 0x7FFFFFFF);
                return b;
            }
            case SpdyUnknownControlFrame u:
            {
                var b = new byte[8 + u.Payload.Length];
                BinaryPrimitives.WriteUInt32BigEndian(b, 0x80000000u | ((uint)u.Version << 16) | u.Type);
                WriteFlagsLength(b, u.Flags, u.Payload.Length);
                u.Payload.CopyTo(b, 8);
                return b;
            }
            default:
                throw new ArgumentException($"unknown frame {frame.GetType().Name}", nameof(frame));
        }
    }

    private byte[] StreamHeaders(SpdyFrameType type, uint streamId, bool fin, SpdyHeaders headers)
    {
        var h = Compress(headers);
        var b = Control(type, fin ? SpdyFlags.Fin : (byte)0, 4 + h.Length);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8), streamId & 0x7FFFFFFF);
        h.CopyTo(b, 12);
        return b;
    }

    private byte[] Compress(SpdyHeaders headers) => _deflater.Compress(SpdyHeaderBlock.Encode(headers));

    private static byte[] Control(SpdyFrameType type, byte flags, int length)
    {
        var b = new byte[8 + length];
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x80000000u | ((uint)SpdyProtocol.Version << 16) | (ushort)type);
        WriteFlagsLength(b, flags, length);
        return b;
    }

    private static void WriteFlagsLength(byte[] b, byte flags, int length)
    {
        if (length > SpdyProtocol.MaxFrameLength) throw new ArgumentException($"frame payload of {length} bytes does not fit 24 bits");
        b[4] = flags;
        b[5] = (byte)(length >> 16);
        b[6] = (byte)(length >> 8);
        b[7] = (byte)length;
    }

    public void Dispose()
    {
        _deflater.Dispose();
        _lock.Dispose();
    }
}
