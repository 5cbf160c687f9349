using Hull.Images.Unpack;

namespace Hull.Images.Content;

/// <summary>
/// Reads <paramref name="source"/> and writes every byte read into <paramref name="ingest"/> as well:
/// the pull pipeline download → (content ingest + decompress → untar) in one pass, without a second
/// read of the blob. Commit the writer after the consumer has read to the end.
/// </summary>
public sealed class TeeReadStream(Stream source, ContentWriter ingest) : ReadOnlyStreamBase
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (read > 0) await ingest.WriteAsync(buffer[..read], cancellationToken).ConfigureAwait(false);
        return read;
    }
}
