using Hull.Linux;

namespace Hull.Images.Unpack;

/// <summary>
/// Decompresses while reading, through a native streaming decoder (zstd frames or gzip members, one or more
/// concatenated). Input that ends inside a frame is an error, never a short read that looks like the end.
/// </summary>
internal sealed class DecompressionStream(Stream compressed, IStreamDecoder decoder, string format, int inputBufferSize) : ReadOnlyStreamBase
{
    private readonly byte[] _input = new byte[inputBufferSize];
    private int _inputStart, _inputEnd;
    private bool _endOfInput;
    private bool _inFrame; // a frame started and has not been fully decoded and flushed yet

    public static DecompressionStream Zstd(Stream compressed) =>
        new(compressed, new ZstdDecoder(), "zstd", ZstdDecoder.RecommendedInputSize);

    public static DecompressionStream Gzip(Stream compressed) => new(compressed, new GzipDecoder(), "gzip", 64 * 1024);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            if (_inputStart == _inputEnd && !_endOfInput)
            {
                _inputEnd = await compressed.ReadAsync(_input, cancellationToken).ConfigureAwait(false);
                _inputStart = 0;
                _endOfInput = _inputEnd == 0;
            }
            if (_inputStart == _inputEnd && _endOfInput && !_inFrame) return 0;

            _inFrame = decoder.Decode(_input.AsSpan(_inputStart, _inputEnd - _inputStart), buffer.Span, out int consumed, out int written);
            _inputStart += consumed;
            if (written > 0) return written;
            if (_inputStart == _inputEnd && _endOfInput)
            {
                if (_inFrame) throw new InvalidDataException($"{format} stream is truncated (it ends inside a frame)");
                return 0;
            }
            if (consumed == 0 && _inputStart != _inputEnd)
                throw new InvalidDataException($"{format} decoder made no progress");
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) decoder.Dispose();
        base.Dispose(disposing);
    }
}
