using System.Text;

namespace Hull.Streaming.Spdy;

/// <summary>Control frame types of SPDY/3.1 (draft 3.1 section 2.6). 0 stands for DATA.</summary>
public enum SpdyFrameType : ushort
{
    Data = 0,
    SynStream = 1,
    SynReply = 2,
    RstStream = 3,
    Settings = 4,
    Ping = 6,
    GoAway = 7,
    Headers = 8,
    WindowUpdate = 9,
}

/// <summary>RST_STREAM status codes.</summary>
public enum SpdyRstStatus : uint
{
    ProtocolError = 1,
    InvalidStream = 2,
    RefusedStream = 3,
    UnsupportedVersion = 4,
    Cancel = 5,
    InternalError = 6,
    FlowControlError = 7,
    StreamInUse = 8,
    StreamAlreadyClosed = 9,
    FrameTooLarge = 11,
}

/// <summary>GOAWAY status codes.</summary>
public enum SpdyGoAwayStatus : uint
{
    Ok = 0,
    ProtocolError = 1,
    InternalError = 2,
}

/// <summary>SETTINGS ids.</summary>
public enum SpdySettingId : uint
{
    UploadBandwidth = 1,
    DownloadBandwidth = 2,
    RoundTripTime = 3,
    MaxConcurrentStreams = 4,
    CurrentCwnd = 5,
    DownloadRetransRate = 6,
    InitialWindowSize = 7,
    ClientCertificateVectorSize = 8,
}

public static class SpdyFlags
{
    public const byte Fin = 0x01;
    public const byte Unidirectional = 0x02;
    public const byte ClearSettings = 0x01;
}

/// <summary>The protocol constants one place owns.</summary>
public static class SpdyProtocol
{
    public const ushort Version = 3;
    public const int InitialWindowSize = 64 * 1024;
    public const int MaxFrameLength = 0xFFFFFF;
    /// <summary>Largest DATA payload Hull writes in one frame.</summary>
    public const int MaxDataChunk = 16 * 1024;
    /// <summary>Largest decompressed header block Hull accepts.</summary>
    public const int MaxHeaderBlock = 256 * 1024;
}

/// <summary>A name/value header block. SPDY names are lower case; several values of one name are NUL-separated.</summary>
public sealed class SpdyHeaders : List<KeyValuePair<string, string>>
{
    public SpdyHeaders() { }
    public SpdyHeaders(IEnumerable<KeyValuePair<string, string>> items) : base(items) { }

    public void Add(string name, string value) => Add(new KeyValuePair<string, string>(name.ToLowerInvariant(), value));

    /// <summary>The first value of <paramref name="name"/> (case-insensitive), or null.</summary>
    public string? Get(string name)
    {
        foreach (var (k, v) in this)
            if (string.Equals(k, name, StringComparison.OrdinalIgnoreCase))
            {
                int nul = v.IndexOf('\0');
                return nul < 0 ? v : v[..nul];
            }
        return null;
    }

    public override string ToString() => string.Join(", ", this.Select(kv => $"{kv.Key}={kv.Value.Replace('\0', '|')}"));
}

public abstract record SpdyFrame;
public sealed record SpdyDataFrame(uint StreamId, bool Fin, ReadOnlyMemory<byte> Data) : SpdyFrame;
public sealed record SpdySynStreamFrame(uint StreamId, uint AssociatedStreamId, byte Priority, byte Slot, byte Flags, SpdyHeaders Headers) : SpdyFrame
{
    public bool Fin => (Flags & SpdyFlags.Fin) != 0;
    public bool Unidirectional => (Flags & SpdyFlags.Unidirectional) != 0;
}
public sealed record SpdySynReplyFrame(uint StreamId, bool Fin, SpdyHeaders Headers) : SpdyFrame;
public sealed record SpdyRstStreamFrame(uint StreamId, SpdyRstStatus Status) : SpdyFrame;
public readonly record struct SpdySetting(SpdySettingId Id, byte Flags, uint Value);
public sealed record SpdySettingsFrame(bool ClearSettings, IReadOnlyList<SpdySetting> Settings) : SpdyFrame
{
    public uint? Get(SpdySettingId id)
    {
        foreach (var s in Settings) if (s.Id == id) return s.Value;
        return null;
    }
}
public sealed record SpdyPingFrame(uint Id) : SpdyFrame;
public sealed record SpdyGoAwayFrame(uint LastGoodStreamId, SpdyGoAwayStatus Status) : SpdyFrame;
public sealed record SpdyHeadersFrame(uint StreamId, bool Fin, SpdyHeaders Headers) : SpdyFrame;
public sealed record SpdyWindowUpdateFrame(uint StreamId, uint DeltaWindowSize) : SpdyFrame;
/// <summary>A control frame of a type Hull does not know; SPDY says to ignore it.</summary>
public sealed record SpdyUnknownControlFrame(ushort Version, ushort Type, byte Flags, byte[] Payload) : SpdyFrame;

/// <summary>A malformed frame or header block; the session answers with GOAWAY(PROTOCOL_ERROR).</summary>
public sealed class SpdyProtocolException(string message, uint streamId = 0, SpdyRstStatus status = SpdyRstStatus.ProtocolError)
    : IOException(message)
{
    public uint StreamId { get; } = streamId;
    public SpdyRstStatus Status { get; } = status;
}

/// <summary>The uncompressed name/value block format (draft 3 section 2.6.10): 32-bit counts and lengths.</summary>
public static class SpdyHeaderBlock
{
    public static byte[] Encode(SpdyHeaders headers)
    {
        var ms = new MemoryStream();
        var len = new byte[4];
        void WriteInt(int v) { System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(len, v); ms.Write(len); }
        WriteInt(headers.Count);
        foreach (var (name, value) in headers)
        {
            var n = Encoding.UTF8.GetBytes(name.ToLowerInvariant());
            var v = Encoding.UTF8.GetBytes(value);
            WriteInt(n.Length); ms.Write(n);
            WriteInt(v.Length); ms.Write(v);
        }
        return ms.ToArray();
    }

    public static SpdyHeaders Decode(ReadOnlySpan<byte> block, uint streamId = 0)
    {
        int pos = 0;
        int ReadInt(ReadOnlySpan<byte> b)
        {
            if (b.Length - pos < 4) throw new SpdyProtocolException("header block is truncated", streamId);
            int v = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b[pos..]);
            pos += 4;
            if (v < 0) throw new SpdyProtocolException("header block length is negative", streamId);
            return v;
        }
        string ReadString(ReadOnlySpan<byte> b)
        {
            int l = ReadInt(b);
            if (b.Length - pos < l) throw new SpdyProtocolException("header block is truncated", streamId);
            var s = Encoding.UTF8.GetString(b.Slice(pos, l));
            pos += l;
            return s;
        }
        int count = ReadInt(block);
        if (count > block.Length / 8) throw new SpdyProtocolException($"header block claims {count} pairs", streamId);
        var headers = new SpdyHeaders();
        for (int i = 0; i < count; i++)
        {
            var name = ReadString(block);
            if (name.Length == 0) throw new SpdyProtocolException("header name is empty", streamId);
            var value = ReadString(block);
            headers.Add(new KeyValuePair<string, string>(name, value));
        }
        if (pos != block.Length) throw new SpdyProtocolException("header block has trailing bytes", streamId);
        return headers;
    }
}
