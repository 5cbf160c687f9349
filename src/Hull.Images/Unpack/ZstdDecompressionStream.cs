using Hull.Linux;

namespace Hull.Images.Unpack;

/// <summary>Decompresses zstd (one or more concatenated frames) while reading, through libzstd's streaming API.</summary>
internal sealed class ZstdDecompressionStream(Stream compressed) : ReadOnlyStreamBase
{
    private readonly ZstdDecoder _decoder = new();
    private readonly byte[] _input = new byte[ZstdDecoder.RecommendedInputSize];
    private int _inputStart, _inputEnd;
    private bool _endOfInput;
    private bool _inFrame; // a frame started and has not been fully decoded and flushed yet

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

            nuint hint = _decoder.Decompress(_input.AsSpan(_inputStart, _inputEnd - _inputStart), buffer.Span, out int consumed, out int written);
            _inputStart += consumed;
            _inFrame = hint != 0;
            if (written > 0) return written;
            if (_inputStart == _inputEnd && _endOfInput)
            {
                if (_inFrame) throw new InvalidDataException("zstd stream is truncated (it ends inside a frame)");
                return 0;
            }
            if (consumed == 0 && _inputStart != _inputEnd)
                throw new InvalidDataException("zstd decoder made no progress");
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _decoder.Dispose();
        base.Dispose(disposing);
    }
}
