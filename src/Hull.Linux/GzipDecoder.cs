using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>
/// A streaming gzip decompression context of zlib (Debian zlib1g), member by member. Not
/// System.IO.Compression.GZipStream: it returns end of stream where its input ends, also in the middle of a member
/// (dotnet/runtime#47563), so a truncated layer whose tar happens to be complete would unpack without an error.
/// zlib reports the end of each member once its CRC-32 and length trailer have checked out.
/// </summary>
public sealed unsafe partial class GzipDecoder : IStreamDecoder
{
    private const string Library = "libz.so.1";
    private const int GzipOnly = 15 + 16; // the largest window, with a gzip header and trailer (zlib's windowBits)
    private const int ZOk = 0, ZStreamEnd = 1, ZBufError = -5, ZNoFlush = 0;

    private ZStream* _stream;
    private bool _memberEnded; // the last call ended a member; more input starts the next one

    public GzipDecoder()
    {
        // zlib keeps a pointer back to its z_stream and checks it on every call, so the struct must not move.
        _stream = (ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZStream));
        // zlib compares only the major digit of the version the caller was built against, and the struct's size.
        int code = inflateInit2_(_stream, GzipOnly, "1.2.11", sizeof(ZStream));
        if (code != ZOk)
        {
            NativeMemory.Free(_stream);
            _stream = null;
            throw new InvalidOperationException($"zlib inflateInit2 failed ({code})");
        }
    }

    public bool Decode(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
    {
        ObjectDisposedException.ThrowIf(_stream == null, this);
        consumed = written = 0;
        if (_memberEnded)
        {
            if (input.IsEmpty) return false;
            // Another member follows (pigz, eStargz); a second header must be a gzip header too.
            Check(inflateReset(_stream));
            _memberEnded = false;
        }
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = output)
        {
            _stream->NextIn = inPtr;
            _stream->AvailIn = (uint)input.Length;
            _stream->NextOut = outPtr;
            _stream->AvailOut = (uint)output.Length;
            int code = inflate(_stream, ZNoFlush);
            consumed = input.Length - (int)_stream->AvailIn;
            written = output.Length - (int)_stream->AvailOut;
            _stream->NextIn = _stream->NextOut = null;
            if (code == ZStreamEnd) _memberEnded = true;
            else if (code != ZBufError) Check(code); // Z_BUF_ERROR: no progress with this input, not an error
            return !_memberEnded;
        }
    }

    private void Check(int code)
    {
        if (code == ZOk) return;
        string? message = _stream->Message == null ? null : Marshal.PtrToStringUTF8((nint)_stream->Message);
        throw new InvalidDataException($"gzip: {message ?? $"zlib error {code}"}");
    }

    public void Dispose()
    {
        if (_stream == null) return;
        inflateEnd(_stream);
        NativeMemory.Free(_stream);
        _stream = null;
    }

    /// <summary>zlib's z_stream (uInt is 32 bits, uLong is the word size on Linux).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public byte* Message;
        public nint State;
        public nint Alloc, Free, Opaque;
        public int DataType;
        public nuint Adler, Reserved;
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int inflateInit2_(ZStream* stream, int windowBits, string version, int streamSize);
    [LibraryImport(Library)] private static partial int inflate(ZStream* stream, int flush);
    [LibraryImport(Library)] private static partial int inflateReset(ZStream* stream);
    [LibraryImport(Library)] private static partial int inflateEnd(ZStream* stream);
}
