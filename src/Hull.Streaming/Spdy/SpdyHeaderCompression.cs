using System.Buffers.Binary;
using System.IO.Compression;

namespace Hull.Streaming.Spdy;

// SPDY/3 compresses header blocks with one zlib stream per direction per session, primed with the SPDY dictionary
// (draft 3 section 2.6.10.1), each block ending in a sync flush. .NET's ZLibStream cannot take a preset dictionary, so
// both classes drive a raw DeflateStream (the BCL's zlib) and handle the two zlib-format parts themselves: the 2-byte
// header with its FDICT flag and DICTID, and the dictionary, which only has to be in the 32 KiB window on both sides.

/// <summary>
/// The sending side of a session's header compression. Every <see cref="Compress"/> ends in a sync flush, so each
/// block is decodable by a peer that has seen the earlier ones. Not thread-safe (the frame writer serializes calls).
/// </summary>
public sealed class SpdyHeaderCompressor : IDisposable
{
    /// <summary>CMF 0x78 (deflate, 32 KiB window) and FLG 0xBB (FDICT set, check bits): the start of every SPDY/3 header stream.</summary>
    internal static ReadOnlySpan<byte> ZlibHeader => [0x78, 0xbb];

    private readonly MemoryStream _output = new();
    private readonly DeflateStream _deflate;
    private bool _headerWritten;

    public SpdyHeaderCompressor()
    {
        _deflate = new DeflateStream(_output, CompressionLevel.Optimal, leaveOpen: true);
        // Deflate the dictionary and throw the output away: that puts it in the compressor's window exactly where a
        // peer's inflater has it (it was given the dictionary), so later blocks may refer back into it.
        _deflate.Write(SpdyDictionary.V3);
        _deflate.Flush();
        _output.SetLength(0);
    }

    /// <summary>Compresses one header block and sync-flushes; the first result also carries the zlib header.</summary>
    public byte[] Compress(ReadOnlySpan<byte> block)
    {
        if (!_headerWritten)
        {
            _output.Write(ZlibHeader);
            Span<byte> id = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(id, SpdyDictionary.Adler32);
            _output.Write(id);
            _headerWritten = true;
        }
        _deflate.Write(block);
        _deflate.Flush(); // Z_SYNC_FLUSH: everything so far is on the wire, ending on a byte boundary
        var bytes = _output.ToArray();
        _output.SetLength(0);
        return bytes;
    }

    public void Dispose()
    {
        _deflate.Dispose();
        _output.Dispose();
    }
}

/// <summary>
/// The receiving side of a session's header compression. The peer's first block starts with the zlib header; when it
/// names the SPDY dictionary (FDICT + DICTID), the raw inflater is first fed a stored deflate block holding the
/// dictionary, whose output is dropped, which leaves the dictionary in its window. Not thread-safe.
/// </summary>
public sealed class SpdyHeaderDecompressor : IDisposable
{
    /// <summary>Compressed bytes not yet read by the inflater, which reads them up to the end.</summary>
    private readonly MemoryStream _input = new();
    private readonly DeflateStream _inflate;
    private readonly byte[] _buffer = new byte[4096];
    private bool _headerRead;
    private int _skip;

    public SpdyHeaderDecompressor() => _inflate = new DeflateStream(_input, CompressionMode.Decompress);

    /// <summary>
    /// Decompresses one flushed block. Throws <see cref="InvalidDataException"/> on a corrupt stream, a stream made
    /// with another dictionary, or output beyond <paramref name="maxOutput"/> bytes.
    /// </summary>
    public byte[] Decompress(ReadOnlySpan<byte> compressed, int maxOutput)
    {
        if (!_headerRead)
        {
            compressed = ReadZlibHeader(compressed);
            _headerRead = true;
        }
        Append(compressed);
        var output = new MemoryStream();
        while (true)
        {
            // Reads stop at 0 when the inflater has produced all it can from the input so far (a sync-flushed block
            // is complete by then); the BCL's DeflateStream does not latch that as the end of the stream.
            int n = _inflate.Read(_buffer);
            if (n == 0) break;
            int skipped = Math.Min(n, _skip);
            _skip -= skipped;
            if (output.Length + n - skipped > maxOutput) throw new InvalidDataException($"decompressed data exceeds {maxOutput} bytes");
            output.Write(_buffer, skipped, n - skipped);
        }
        return output.ToArray();
    }

    private ReadOnlySpan<byte> ReadZlibHeader(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2) throw new InvalidDataException("the first header block is too short for a zlib header");
        byte cmf = data[0], flg = data[1];
        if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0)
            throw new InvalidDataException($"the header block stream does not start with a zlib header ({cmf:x2} {flg:x2})");
        if ((flg & 0x20) == 0) return data[2..];
        if (data.Length < 6) throw new InvalidDataException("the first header block is too short for a zlib dictionary id");
        uint id = BinaryPrimitives.ReadUInt32BigEndian(data[2..]);
        if (id != SpdyDictionary.Adler32)
            throw new InvalidDataException($"the header block stream wants a preset dictionary with id {id:x8}, not the SPDY/3 dictionary ({SpdyDictionary.Adler32:x8})");
        // A non-final stored block (BFINAL 0, BTYPE 00, padded to the byte) of LEN bytes, then ~LEN, then the bytes.
        var stored = new byte[5 + SpdyDictionary.V3.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(stored.AsSpan(1), (ushort)SpdyDictionary.V3.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(stored.AsSpan(3), (ushort)~SpdyDictionary.V3.Length);
        SpdyDictionary.V3.CopyTo(stored.AsSpan(5));
        Append(stored);
        _skip = SpdyDictionary.V3.Length;
        return data[6..];
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_input.Position == _input.Length) _input.SetLength(0); // all read: start over at the front
        long read = _input.Position;
        _input.Seek(0, SeekOrigin.End);
        _input.Write(bytes);
        _input.Position = read;
    }

    public void Dispose() => _inflate.Dispose();
}
