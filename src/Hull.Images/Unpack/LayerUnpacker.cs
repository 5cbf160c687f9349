using Hull.Core;
using Hull.Images.Oci;
using Hull.Images.Snapshots;

namespace Hull.Images.Unpack;

/// <summary>
/// Unpacks one layer into a committed snapshot named by its chain ID, the step a pull repeats for
/// each layer once its parent is done: prepare on the parent → apply → check the DiffID → commit.
/// Any failure, a malicious tar included, removes the half-filled snapshot.
/// </summary>
public sealed class LayerUnpacker(ISnapshotter snapshotter)
{
    /// <summary>Label on unpacked snapshots naming their uncompressed digest, as containerd sets it.</summary>
    public const string UncompressedLabel = "containerd.io/uncompressed";

    /// <summary>
    /// Returns the chain ID of the layer on top of <paramref name="parentChainId"/>. When that snapshot
    /// already exists the stream is not read. FailedPrecondition when the layer's DiffID is not
    /// <paramref name="expectedDiffId"/>.
    /// </summary>
    public async Task<string> UnpackAsync(Stream layer, Descriptor descriptor, string? parentChainId, string expectedDiffId,
        CancellationToken cancellationToken)
    {
        string chainId = ChainIds.Next(parentChainId, expectedDiffId);
        if (await snapshotter.TryStatAsync(chainId, cancellationToken).ConfigureAwait(false) is not null) return chainId;

        // A unique key: concurrent pulls of the same layer each extract, and the first commit wins.
        string key = $"extract-{Guid.NewGuid():N}-{chainId}";
        var mounts = await snapshotter.PrepareAsync(key, parentChainId, null, cancellationToken).ConfigureAwait(false);
        try
        {
            string diffId = await LayerApplier.ApplyAsync(layer, descriptor.MediaType, mounts, descriptor.Digest, cancellationToken).ConfigureAwait(false);
            if (diffId != expectedDiffId)
                throw new HullException(ErrorKind.FailedPrecondition,
                    $"layer {descriptor.Digest}: its uncompressed digest is {diffId}, but the image config's diff_id is {expectedDiffId}");
            try
            {
                await snapshotter.CommitAsync(chainId, key, new Dictionary<string, string> { [UncompressedLabel] = diffId }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (HullException e) when (e.Kind == ErrorKind.AlreadyExists)
            {
                await snapshotter.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false); // another pull committed it first
            }
            return chainId;
        }
        catch
        {
            await RemoveQuietlyAsync(key).ConfigureAwait(false);
            throw;
        }
    }

    private async Task RemoveQuietlyAsync(string key)
    {
        try
        {
            await snapshotter.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false);
        }
        catch (HullException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }
}
