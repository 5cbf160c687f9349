using Hull.Core;
using Hull.Images.Content;
using Hull.Images.Oci;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Unpack;

namespace Hull.Images.Transfer;

/// <summary>
/// Unpacks an image whose manifest, config and layers are already in the content store (an import):
/// each layer onto its parent's snapshot, in order, with the same <see cref="LayerUnpacker"/> and chain
/// IDs a pull uses, so an imported image and a pulled one share snapshots. Layers whose chain is
/// already committed are skipped. The caller leases the chains first.
/// </summary>
public sealed class ContentUnpacker(IContentStore content, ISnapshotter snapshotter)
{
    private readonly LayerUnpacker _unpacker = new(snapshotter);

    /// <summary>Reads and checks a manifest's config: the diff IDs must match the layers one to one.</summary>
    public async Task<ImageConfig> ReadConfigAsync(ImageManifest manifest, string image, CancellationToken ct)
    {
        var bytes = await ImageContentTree.ReadAllAsync(content, manifest.Config.Digest, RegistryRepository.MaxManifestSize, ct).ConfigureAwait(false);
        var config = ImageConfig.Parse(bytes, image);
        if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
            throw new HullException(ErrorKind.InvalidArgument,
                $"image \"{image}\": the config lists {config.RootFs.DiffIds.Count} layers but the manifest has {manifest.Layers.Count}");
        return config;
    }

    /// <summary>Unpacks every layer; returns the chain ID of each prefix (the last names the image's snapshot).</summary>
    public async Task<IReadOnlyList<string>> UnpackAsync(ImageManifest manifest, ImageConfig config, string image,
        IProgress<TransferProgress>? progress, CancellationToken ct)
    {
        var chains = ChainIds.Compute(config.RootFs.DiffIds);
        for (int i = 0; i < chains.Count; i++)
        {
            var layer = manifest.Layers[i];
            if (await snapshotter.TryStatAsync(chains[i], ct).ConfigureAwait(false) is not null)
            {
                progress?.Report(new TransferProgress(image, layer.Digest, "layer", TransferPhase.AlreadyPresent, layer.Size, layer.Size));
                continue;
            }
            progress?.Report(new TransferProgress(image, layer.Digest, "layer", TransferPhase.Unpacking, 0, layer.Size));
            await using (var stream = await content.OpenReadAsync(layer.Digest, ct).ConfigureAwait(false))
            {
                await _unpacker.UnpackAsync(stream, layer, i == 0 ? null : chains[i - 1], config.RootFs.DiffIds[i], ct).ConfigureAwait(false);
            }
            progress?.Report(new TransferProgress(image, layer.Digest, "layer", TransferPhase.Done, layer.Size, layer.Size));
        }
        return chains;
    }
}
