using Hull.Config;
using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Hull.Images;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Reference;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Transfer;
using Hull.Images.Verifiers;
using Microsoft.Extensions.Logging;

namespace Hulld;

/// <summary>Wires the transfer service: registry → content store → snapshotter → image store.</summary>
internal static class ImagesComposition
{
    public static async Task<(ImageManager Images, RegistryClient Registry, string SnapshotRoot, ITransferService Transfer)> OpenAsync(HullConfig config, MetadataStore metadata,
        DeprecationRegistry deprecations, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var content = await ContentStore.OpenAsync(config.Root, metadata, null,
            loggers.CreateLogger<ContentStore>(), cancellationToken).ConfigureAwait(false);
        var snapshotter = await Snapshotters.OpenAsync(config.Root, metadata, config.Images.Snapshotter,
            loggers.CreateLogger("snapshotter"), cancellationToken).ConfigureAwait(false);
        var images = new ImageStore(metadata);
        var leases = new LeaseManager();
        var gc = new GarbageCollector(content, snapshotter, images, leases, loggers.CreateLogger<GarbageCollector>());
        // Containers' writable snapshots (key = container id) and pods' pause-image snapshots (pinned_images.sandbox)
        // are roots, from the stores, so even the collection at start (before anything is recovered) keeps them.
        var containerStore = new Hull.Cri.Containers.ContainerStore(metadata);
        var sandboxStore = new Hull.Sandbox.Store.SandboxStore(metadata);
        gc.SnapshotRoots = async ct =>
            [.. await containerStore.SnapshotKeysAsync(ct).ConfigureAwait(false), .. await sandboxStore.InfraSnapshotKeysAsync(ct).ConfigureAwait(false)];
        // The CRI plugin's registry.config_path wins; the transfer service's is the fallback, as in containerd.
        string hostsPath = config.Images.RegistryConfigPath.Length > 0 ? config.Images.RegistryConfigPath : config.Transfer.ConfigPath;
        var registry = new RegistryClient(new RegistryHosts(hostsPath.Length > 0 ? hostsPath : null),
            new RegistryClientOptions { Logger = loggers.CreateLogger<RegistryClient>() }); // retries and failing hosts are logged
        var verifier = new BindirVerifier(config.ImageVerifier, loggers.CreateLogger<BindirVerifier>());
        var pinned = config.Images.PinnedImages.Values
            .Select(r => ImageReference.TryParseDockerRef(r, out var parsed) ? parsed.ToString() : r)
            .ToHashSet(StringComparer.Ordinal);
        var puller = new ImagePuller(registry, content, snapshotter, images, leases, gc, verifier, deprecations, new PullOptions
        {
            MaxConcurrentDownloads = config.Images.MaxConcurrentDownloads,
            ProgressTimeout = config.Images.ImagePullProgressTimeout,
            PinnedNames = pinned,
        }, loggers.CreateLogger<ImagePuller>());
        // Finish whatever a crash interrupted: half-pulled content, extraction snapshots, removals.
        await gc.CollectAsync(cancellationToken).ConfigureAwait(false);
        string snapshotRoot = Path.Combine(config.Root, "snapshots");
        var manager = new ImageManager(images, content, snapshotter, puller, gc, snapshotRoot);
        var pusher = new ImagePusher(registry, content, leases,
            new PushOptions { MaxConcurrentUploads = config.Transfer.MaxConcurrentUploadedLayers }, loggers.CreateLogger<ImagePusher>());
        var importer = new OciArchiveImporter(content, snapshotter, images, leases, gc, loggers.CreateLogger<OciArchiveImporter>());
        var transfer = new TransferService(manager, pusher, importer, new OciArchiveExporter(content, leases),
            new ImportOptions { PinnedNames = pinned });
        return (manager, registry, snapshotRoot, transfer);
    }
}
