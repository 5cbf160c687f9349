using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Hull.Images;
using Hull.Images.Content;
using Hull.Images.Gc;
using Hull.Images.Registry;
using Hull.Images.Snapshots;
using Hull.Images.Store;
using Hull.Images.Transfer;
using Hull.Images.Verifiers;
using Hull.Pods.Images;
using Hull.Pods.Stores;
using Microsoft.Extensions.Logging;

namespace Hulld.Composition;

/// <summary>The image side once wired: the CRI image service's manager, the registry client (disposed at exit), the transfer service.</summary>
internal sealed record ImagesParts(ImageManager Images, RegistryClient Registry, ITransferService Transfer);

/// <summary>Wires the transfer service: registry → content store → snapshotter → image store.</summary>
internal static class ImagesComposition
{
    public static async Task<ImagesParts> OpenAsync(BoundOptions options, MetadataStore metadata, DeprecationRegistry deprecations,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var images = options.Images;
        var content = await ContentStore.OpenAsync(options.Root, metadata, null,
            loggers.CreateLogger<ContentStore>(), cancellationToken).ConfigureAwait(false);
        var snapshotter = await Snapshotters.OpenAsync(options.Root, metadata, images.Snapshotter,
            loggers.CreateLogger("snapshotter"), cancellationToken, images.SlowChown).ConfigureAwait(false);
        var store = new ImageStore(metadata);
        var leases = new LeaseManager();
        // Containers' writable snapshots and pods' pause-image snapshots are roots, read from the stores, so even the
        // collection at start (before anything is recovered) keeps them.
        var roots = new GcRoots(new ContainerStore(metadata), new SandboxStore(metadata));
        var gc = new GarbageCollector(content, snapshotter, store, leases, loggers.CreateLogger<GarbageCollector>(), roots.SnapshotKeysAsync);
        var registry = new RegistryClient(new RegistryHosts(images.HostsPath.Length > 0 ? images.HostsPath : null),
            new RegistryClientOptions { Logger = loggers.CreateLogger<RegistryClient>() }); // retries and failing hosts are logged
        var verifier = new BindirVerifier(images.Verifiers, loggers.CreateLogger<BindirVerifier>());
        var puller = new ImagePuller(registry, content, snapshotter, store, leases, gc, verifier, deprecations, images.Pull,
            loggers.CreateLogger<ImagePuller>());
        // Finish whatever a crash interrupted: half-pulled content, extraction snapshots, removals.
        await gc.CollectAsync(cancellationToken).ConfigureAwait(false);
        // An image a container mounts as a volume cannot be removed while that container exists.
        var manager = new ImageManager(store, content, snapshotter, puller, gc, Path.Combine(options.Root, "snapshots"), roots.ImageUserAsync);
        var pusher = new ImagePusher(registry, content, leases, images.Push, loggers.CreateLogger<ImagePusher>());
        var importer = new OciArchiveImporter(content, snapshotter, store, leases, gc, loggers.CreateLogger<OciArchiveImporter>());
        var transfer = new TransferService(manager, pusher, importer, new OciArchiveExporter(content, leases), images.Import);
        return new ImagesParts(manager, registry, transfer);
    }
}
