using System.Buffers.Binary;

namespace Hull.Streaming.Spdy;

/// <summary>
/// Reads SPDY/3.1 frames from a byte stream and inflates header blocks with the session's
/// persistent receive-side zlib context. Knows nothing of streams or flow control.
/// </summary>
public sealed class SpdyFrameReader : IDisposable
{
    private readonly Stream _input;
    private readonly SpdyHeaderDecompressor _inflater = new();
    private readonly byte[] _header = new byte[8];
    private readonly int _maxFrameLength;

    public SpdyFrameReader(Stream input, int maxFrameLength = SpdyProtocol.MaxFrameLength)
    {
        _input = input;
        _maxFrameLength = maxFrameLength;
    }

    /// <summary>The next frame, or null at a clean end of input (between frames).</summary>
    public async ValueTask<SpdyFrame?> ReadFrameAsync(CancellationToken ct)
    {
        if (!await FillAsync(_header, allowEof: true, ct).ConfigureAwait(false)) return null;
        uint word0 = BinaryPrimitives.ReadUInt32BigEndian(_header);
        byte flags = _header[4];
        int length = (_header[5] << 16) | (_header[6] << 8) | _header[7];
        if (length > _maxFrameLength) throw new SpdyProtocolException($"frame of {length} bytes exceeds the {_maxFrameLength}-byte limit", 0, SpdyRstStatus.FrameTooLarge);
        var payload = length == 0 ? [] : new byte[length];
        if (length > 0) await FillAsync(payload, allowEof: false, ct).ConfigureAwait(false);
        return Parse(word0, flags, payload);
    }

    /// <summary>Parses one frame from its 8-byte header fields and payload.</summary>
    public SpdyFrame Parse(uint word0, byte flags, byte[] payload)
    {
        if ((word0 & 0x80000000) == 0)
            return new SpdyDataFrame(word0 & 0x7FFFFFFF, (flags & SpdyFlags.Fin) != 0, payload);

        ushort version = (ushort)((word0 >> 16) & 0x7FFF);
        ushort type = (ushort)(word0 & 0xFFFF);
        if (version != SpdyProtocol.Version)
            throw new SpdyProtocolException($"SPDY version {version} is not supported (only 3)", 0, SpdyRstStatus.UnsupportedVersion);
        ReadOnlySpan<byte> p = payload;
        switch ((SpdyFrameType)type)
        {
            case SpdyFrameType.SynStream:
            {
                Need(p, 10, "SYN_STREAM");
                uint id = BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF;
                uint assoc = BinaryPrimitives.ReadUInt32BigEndian(p[4..]) & 0x7FFFFFFF;
                return new SpdySynStreamFrame(id, assoc, (byte)(p[8] >> 5), p[9], flags, Inflate(p[10..], id));
            }
            case SpdyFrameType.SynReply:
            {
                Need(p, 4, "SYN_REPLY");
                uint id = BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF;
                return new SpdySynReplyFrame(id, (flags & SpdyFlags.Fin) != 0, Inflate(p[4..], id));
            }
            case SpdyFrameType.Headers:
            {
                Need(p, 4, "HEADERS");
                uint id = BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF;
                return new SpdyHeadersFrame(id, (flags & SpdyFlags.Fin) != 0, Inflate(p[4..], id));
            }
            case SpdyFrameType.RstStream:
                Exact(p, 8, "RST_STREAM");
                return new SpdyRstStreamFrame(BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF, (SpdyRstStatus)BinaryPrimitives.ReadUInt32BigEndian(p[4..]));
            case SpdyFrameType.Settings:
            {
                Need(p, 4, "SETTINGS");
                uint n = BinaryPrimitives.ReadUInt32BigEndian(p);
                if ((ulong)p.Length != 4 + 8UL * n) throw new SpdyProtocolException($"SETTINGS frame of {p.Length} bytes cannot hold {n} entries");
                var list = new List<SpdySetting>((int)n);
                for (int i = 0; i < n; i++)
                {
                    var e = p.Slice(4 + 8 * i, 8);
                    list.Add(new SpdySetting((SpdySettingId)(BinaryPrimitives.ReadUInt32BigEndian(e) & 0xFFFFFF), e[0], BinaryPrimitives.ReadUInt32BigEndian(e[4..])));
                }
                return new SpdySettingsFrame((flags & SpdyFlags.ClearSettings) != 0, list);
            }
            case SpdyFrameType.Ping:
                Exact(p, 4, "PING");
                return new SpdyPingFrame(BinaryPrimitives.ReadUInt32BigEndian(p));
            case SpdyFrameType.GoAway:
                // SPDY/3 has a status code; SPDY/2 peers sent only the stream id.
                Need(p, 4, "GOAWAY");
                return new SpdyGoAwayFrame(BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF,
                    p.Length >= 8 ? (SpdyGoAwayStatus)BinaryPrimitives.ReadUInt32BigEndian(p[4..]) : SpdyGoAwayStatus.Ok);
            case SpdyFrameType.WindowUpdate:
                Exact(p, 8, "WINDOW_UPDATE");
                return new SpdyWindowUpdateFrame(BinaryPrimitives.ReadUInt32BigEndian(p) & 0x7FFFFFFF, BinaryPrimitives.ReadUInt32BigEndian(p[4..]) & 0x7FFFFFFF);
            default:
                return new SpdyUnknownControlFrame(version, type, flags, payload);
        }
    }

    private SpdyHeaders Inflate(ReadOnlySpan<byte> compressed, uint streamId)
    {
        // The zlib context is shared by every header block of the session, so even an empty block
        // must pass through it in order.
        byte[] block;
        try { block = compressed.IsEmpty ? [] : _inflater.Decompress(compressed, SpdyProtocol.MaxHeaderBlock); }
        catch (InvalidDataException e) { throw new SpdyProtocolException($"header block of stream {streamId} does not decompress: {e.Message}", streamId); }
        return block.Length == 0 ? new SpdyHeaders() : SpdyHeaderBlock.Decode(block, streamId);
    }

    private static void Need(ReadOnlySpan<byte> p, int n, string what)
    {
        if (p.Length < n) throw new SpdyProtocolException($"{what} frame of {p.Length} bytes is shorter than {n}");
    }

    private static void Exact(ReadOnlySpan<byte> p, int n, string what)
    {
        if (p.Length != n) throw new SpdyProtocolException($"{what} frame has {p.Length} bytes, not {n}");
    }

    private async ValueTask<bool> FillAsync(Memory<byte> buffer, bool allowEof, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _input.ReadAsync(buffer[read..], ct).ConfigureAwait(false);
            if (n == 0)
            {
                if (read == 0 && allowEof) return false;
                throw new EndOfStreamException("connection closed in the middle of a SPDY frame");
            }
            read += n;
        }
        return true;
    }

    public void Dispose() => _inflater.Dispose();
}
