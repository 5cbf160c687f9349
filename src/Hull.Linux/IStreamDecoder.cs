namespace Hull.Linux;

/// <summary>A streaming decompressor of a format made of frames (zstd frames, gzip members), fed input as it arrives.</summary>
public interface IStreamDecoder : IDisposable
{
    /// <summary>
    /// Decompresses as much of <paramref name="input"/> as fits into <paramref name="output"/>. Returns true while a
    /// frame is open (its end is still to come), false once the last one ended and was fully flushed: only then may
    /// the input end. Corrupt input throws <see cref="InvalidDataException"/>.
    /// </summary>
    bool Decode(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written);
}
