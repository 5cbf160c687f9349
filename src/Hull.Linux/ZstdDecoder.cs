using System.Runtime.InteropServices;

namespace Hull.Linux;

/// <summary>
/// A streaming zstd decompression context of libzstd (Debian libzstd1). No zstd package is on the
/// NuGet mirror, and the system library is what every other runtime on the node uses too.
/// </summary>
public sealed partial class ZstdDecoder : IStreamDecoder
{
    private const string Library = "libzstd.so.1";
    private nint _context;

    public ZstdDecoder()
    {
        _context = ZSTD_createDStream();
        if (_context == 0) throw new OutOfMemoryException("ZSTD_createDStream failed");
        Check(ZSTD_initDStream(_context));
    }

    /// <summary>The input buffer size libzstd recommends (one block plus header).</summary>
    public static int RecommendedInputSize => (int)ZSTD_DStreamInSize();

    /// <summary>Decompresses as much as fits; a frame is open until libzstd's hint is 0 (complete and fully flushed).</summary>
    public unsafe bool Decode(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
    {
        ObjectDisposedException.ThrowIf(_context == 0, this);
        fixed (byte* inPtr = input)
        fixed (byte* outPtr = output)
        {
            var inBuffer = new ZstdBuffer { Data = inPtr, Size = (nuint)input.Length };
            var outBuffer = new ZstdBuffer { Data = outPtr, Size = (nuint)output.Length };
            nuint hint = Check(ZSTD_decompressStream(_context, ref outBuffer, ref inBuffer));
            consumed = (int)inBuffer.Position;
            written = (int)outBuffer.Position;
            return hint != 0;
        }
    }

    private static nuint Check(nuint code)
    {
        if (ZSTD_isError(code) != 0)
            throw new InvalidDataException($"zstd: {Marshal.PtrToStringUTF8(ZSTD_getErrorName(code))}");
        return code;
    }

    public void Dispose()
    {
        if (_context != 0) ZSTD_freeDStream(_context);
        _context = 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct ZstdBuffer
    {
        public byte* Data;
        public nuint Size;
        public nuint Position;
    }

    [LibraryImport(Library)] private static partial nint ZSTD_createDStream();
    [LibraryImport(Library)] private static partial nuint ZSTD_initDStream(nint stream);
    [LibraryImport(Library)] private static partial nuint ZSTD_freeDStream(nint stream);
    [LibraryImport(Library)] private static partial nuint ZSTD_decompressStream(nint stream, ref ZstdBuffer output, ref ZstdBuffer input);
    [LibraryImport(Library)] private static partial nuint ZSTD_DStreamInSize();
    [LibraryImport(Library)] private static partial uint ZSTD_isError(nuint code);
    [LibraryImport(Library)] private static partial nint ZSTD_getErrorName(nuint code);
}
