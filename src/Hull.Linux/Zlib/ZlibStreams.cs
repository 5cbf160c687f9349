using System.Runtime.InteropServices;

namespace Hull.Linux.Zlib;

/// <summary>
/// P/Invoke surface of the system zlib (Debian zlib1g, <c>libz.so.1</c>). .NET's ZLibStream cannot
/// take a preset dictionary, which SPDY/3 header compression needs, so Hull binds zlib directly.
/// The <c>z_stream</c> lives in native memory because zlib keeps a pointer back to it.
/// </summary>
internal static unsafe partial class ZlibNative
{
    internal const string Library = "libz.so.1";
    internal const int Z_OK = 0, Z_STREAM_END = 1, Z_NEED_DICT = 2, Z_BUF_ERROR = -5, Z_DATA_ERROR = -3;
    internal const int Z_SYNC_FLUSH = 2;
    internal const int Z_DEFAULT_COMPRESSION = -1;
    internal const int Z_DEFLATED = 8, Z_DEFAULT_STRATEGY = 0, MAX_WBITS = 15, DEF_MEM_LEVEL = 8;

    [StructLayout(LayoutKind.Sequential)]
    internal struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public sbyte* Msg;
        public nint State;
        public nint ZAlloc, ZFree, Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    // zlib only compares the first character of the version string.
    internal static ReadOnlySpan<byte> Version => "1.2.13\0"u8;

    [LibraryImport(Library, EntryPoint = "deflateInit2_")]
    internal static partial int DeflateInit2(ZStream* strm, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);
    [LibraryImport(Library, EntryPoint = "deflateSetDictionary")]
    internal static partial int DeflateSetDictionary(ZStream* strm, byte* dictionary, uint length);
    [LibraryImport(Library, EntryPoint = "deflate")]
    internal static partial int Deflate(ZStream* strm, int flush);
    [LibraryImport(Library, EntryPoint = "deflateEnd")]
    internal static partial int DeflateEnd(ZStream* strm);
    [LibraryImport(Library, EntryPoint = "inflateInit_")]
    internal static partial int InflateInit(ZStream* strm, byte* version, int streamSize);
    [LibraryImport(Library, EntryPoint = "inflateSetDictionary")]
    internal static partial int InflateSetDictionary(ZStream* strm, byte* dictionary, uint length);
    [LibraryImport(Library, EntryPoint = "inflate")]
    internal static partial int Inflate(ZStream* strm, int flush);
    [LibraryImport(Library, EntryPoint = "inflateEnd")]
    internal static partial int InflateEnd(ZStream* strm);
    [LibraryImport(Library, EntryPoint = "adler32")]
    internal static partial nuint Adler32(nuint adler, byte* buffer, uint length);

    internal static string Message(ZStream* strm, int code) =>
        strm->Msg != null ? $"zlib error {code}: {Marshal.PtrToStringUTF8((nint)strm->Msg)}" : $"zlib error {code}";
}

/// <summary>
/// A persistent zlib compression context with an optional preset dictionary. Every
/// <see cref="Compress"/> call ends in a sync flush, so each call's output is decodable on its own
/// by a peer that has seen all earlier outputs (what SPDY header blocks need). Not thread-safe.
/// </summary>
public sealed unsafe class ZlibDeflater : IDisposable
{
    private ZlibNative.ZStream* _strm;

    public ZlibDeflater(ReadOnlySpan<byte> dictionary, int level = ZlibNative.Z_DEFAULT_COMPRESSION)
    {
        _strm = (ZlibNative.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZlibNative.ZStream));
        fixed (byte* v = ZlibNative.Version)
        {
            int rc = ZlibNative.DeflateInit2(_strm, level, ZlibNative.Z_DEFLATED, ZlibNative.MAX_WBITS, ZlibNative.DEF_MEM_LEVEL,
                ZlibNative.Z_DEFAULT_STRATEGY, v, sizeof(ZlibNative.ZStream));
            if (rc != ZlibNative.Z_OK) { NativeMemory.Free(_strm); _strm = null; throw new InvalidOperationException($"deflateInit2 failed: {rc}"); }
        }
        if (!dictionary.IsEmpty)
        {
            fixed (byte* d = dictionary)
            {
                int rc = ZlibNative.DeflateSetDictionary(_strm, d, (uint)dictionary.Length);
                if (rc != ZlibNative.Z_OK) throw new InvalidOperationException(ZlibNative.Message(_strm, rc));
            }
        }
    }

    /// <summary>Compresses <paramref name="input"/> and sync-flushes; returns the bytes produced.</summary>
    public byte[] Compress(ReadOnlySpan<byte> input)
    {
        ObjectDisposedException.ThrowIf(_strm == null, this);
        var output = new MemoryStream(input.Length / 2 + 64);
        Span<byte> buffer = stackalloc byte[4096];
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = buffer)
        {
            _strm->NextIn = inPtr;
            _strm->AvailIn = (uint)input.Length;
            do
            {
                _strm->NextOut = outPtr;
                _strm->AvailOut = (uint)buffer.Length;
                int rc = ZlibNative.Deflate(_strm, ZlibNative.Z_SYNC_FLUSH);
                if (rc != ZlibNative.Z_OK && rc != ZlibNative.Z_BUF_ERROR) throw new InvalidDataException(ZlibNative.Message(_strm, rc));
                output.Write(buffer[..(buffer.Length - (int)_strm->AvailOut)]);
            } while (_strm->AvailOut == 0);
            _strm->NextIn = null;
            _strm->NextOut = null;
        }
        return output.ToArray();
    }

    public void Dispose()
    {
        if (_strm == null) return;
        ZlibNative.DeflateEnd(_strm);
        NativeMemory.Free(_strm);
        _strm = null;
    }
}

/// <summary>
/// A persistent zlib decompression context that answers zlib's request for a preset dictionary
/// (<c>Z_NEED_DICT</c>) with the one it was given. Not thread-safe.
/// </summary>
public sealed unsafe class ZlibInflater : IDisposable
{
    private ZlibNative.ZStream* _strm;
    private readonly byte[] _dictionary;

    public ZlibInflater(ReadOnlySpan<byte> dictionary)
    {
        _dictionary = dictionary.ToArray();
        _strm = (ZlibNative.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZlibNative.ZStream));
        fixed (byte* v = ZlibNative.Version)
        {
            int rc = ZlibNative.InflateInit(_strm, v, sizeof(ZlibNative.ZStream));
            if (rc != ZlibNative.Z_OK) { NativeMemory.Free(_strm); _strm = null; throw new InvalidOperationException($"inflateInit failed: {rc}"); }
        }
    }

    /// <summary>
    /// Decompresses one flushed chunk. Throws <see cref="InvalidDataException"/> on corrupt input or
    /// when the output would exceed <paramref name="maxOutput"/> bytes.
    /// </summary>
    public byte[] Decompress(ReadOnlySpan<byte> input, int maxOutput)
    {
        ObjectDisposedException.ThrowIf(_strm == null, this);
        var output = new MemoryStream(Math.Min(maxOutput, input.Length * 4 + 64));
        Span<byte> buffer = stackalloc byte[4096];
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = buffer)
        {
            _strm->NextIn = inPtr;
            _strm->AvailIn = (uint)input.Length;
            try
            {
                while (true)
                {
                    _strm->NextOut = outPtr;
                    _strm->AvailOut = (uint)buffer.Length;
                    int rc = ZlibNative.Inflate(_strm, ZlibNative.Z_SYNC_FLUSH);
                    if (rc == ZlibNative.Z_NEED_DICT)
                    {
                        if (_dictionary.Length == 0) throw new InvalidDataException("zlib stream needs a preset dictionary and none is known");
                        fixed (byte* d = _dictionary)
                        {
                            int drc = ZlibNative.InflateSetDictionary(_strm, d, (uint)_dictionary.Length);
                            if (drc != ZlibNative.Z_OK) throw new InvalidDataException($"zlib stream wants a different preset dictionary ({ZlibNative.Message(_strm, drc)})");
                        }
                        continue;
                    }
                    int produced = buffer.Length - (int)_strm->AvailOut;
                    if (output.Length + produced > maxOutput) throw new InvalidDataException($"decompressed data exceeds {maxOutput} bytes");
                    output.Write(buffer[..produced]);
                    if (rc == ZlibNative.Z_STREAM_END) break;
                    if (rc == ZlibNative.Z_BUF_ERROR) break; // no progress possible: input used up
                    if (rc != ZlibNative.Z_OK) throw new InvalidDataException(ZlibNative.Message(_strm, rc));
                    if (_strm->AvailIn == 0 && _strm->AvailOut != 0) break;
                }
            }
            finally
            {
                _strm->NextIn = null;
                _strm->NextOut = null;
            }
            if (_strm->AvailIn != 0) throw new InvalidDataException("zlib stream ended before its input");
        }
        return output.ToArray();
    }

    public void Dispose()
    {
        if (_strm == null) return;
        ZlibNative.InflateEnd(_strm);
        NativeMemory.Free(_strm);
        _strm = null;
    }
}

/// <summary>zlib's Adler-32 checksum (the DICTID of a preset dictionary).</summary>
public static unsafe class Adler32
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data) return (uint)ZlibNative.Adler32(1, p, (uint)data.Length);
    }
}
