using Hull.Core;

namespace Hull.Images.Unpack;

public enum LayerCompression { None, Gzip, Zstd }

/// <summary>Recognises a layer's compression by its magic bytes (like containerd's DecompressStream), so a mislabelled layer still unpacks.</summary>
internal static class LayerDecompression
{
    private static ReadOnlySpan<byte> GzipMagic => [0x1f, 0x8b];
    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xb5, 0x2f, 0xfd];

    public static void CheckMediaType(string mediaType, string layer)
    {
        if (mediaType.Contains("+encrypted", StringComparison.Ordinal))
            throw new HullException(ErrorKind.FailedPrecondition, $"layer {layer} is encrypted ({mediaType}); Hull does not decrypt layers");
        if (!mediaType.Contains("tar", StringComparison.Ordinal))
            throw new HullException(ErrorKind.InvalidArgument, $"layer {layer} has media type \"{mediaType}\", which is not a tar layer");
    }

    public static async Task<(Stream Stream, LayerCompression Compression)> OpenAsync(Stream source, CancellationToken cancellationToken)
    {
        var prefix = new byte[4];
        int read = await source.ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        var head = prefix.AsSpan(0, read);
        Stream stream = new PrefixedReadStream(prefix.AsMemory(0, read), source);
        if (head.StartsWith(GzipMagic)) return (DecompressionStream.Gzip(stream), LayerCompression.Gzip);
        if (head.StartsWith(ZstdMagic)) return (DecompressionStream.Zstd(stream), LayerCompression.Zstd);
        return (stream, LayerCompression.None);
    }
}
