using Hull.Cdi;
using Hull.Core.Deprecations;
using Hull.Core.Metadata;
using Hull.Nri;
using Hull.Pods;
using Hull.Pods.Events;
using Hull.Pods.Hooks;
using Hull.Pods.Host;
using Hull.Pods.Images;
using Hull.Pods.Index;
using Hull.Pods.Stores;
using Hull.Runtime.Handlers;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Cni;
using Hull.Sandbox.Controller;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.PodSandbox;
using Microsoft.Extensions.Logging;

namespace Hulld.Composition;

/// <summary>Pods and containers once wired and recovered, and what hulld releases at exit.</summary>
internal sealed record LifecycleParts(PodManager Pods, ContainerManager Containers, LifecycleEvents Events, CniManagers Cni,
    Sandboxers Sandboxers, TaskManagers Tasks, NriHost Nri, CdiRegistry? Cdi) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        Containers.Shutdown();
        await Nri.DisposeAsync().ConfigureAwait(false);
        Cdi?.Dispose();
        foreach (var sandboxer in Sandboxers.All) await sandboxer.ReleaseUnusedAsync(CancellationToken.None).ConfigureAwait(false);
        Tasks.Dispose();
    }
}

/// <summary>
/// Wires the lifecycle: runtime handlers (resolved once), the sandboxers that serve them, the spec builder for this node,
/// the pod and container managers side by side; then recovers what ran before.
/// </summary>
internal static class LifecycleComposition
{
    public static async Task<LifecycleParts> OpenAsync(BoundOptions options, MetadataStore metadata, ImagesParts images,
        DeprecationRegistry deprecations, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var specs = new SpecBuilder(options.Specs, HostInfo.Detect());
        var configured = new RuntimeHandlers(options.Handlers, options.DefaultHandler);
        var tasks = new TaskManagers(options.Tasks, loggers);
        var cni = new CniManagers(options.Cni, loggers);
        var containerImages = new ContainerImages(images.Images);
        // One pinner: both sandboxers pin pod namespaces under <state>/ns/ and share its node-wide mount.
        var pinner = new NamespacePinner(options.State);
        var podsandbox = new PodSandboxController(options.PodSandbox, configured, pinner, cni, tasks, specs,
            loggers.CreateLogger<PodSandboxController>(), new InfraImageProvider(containerImages, loggers.CreateLogger<InfraImageProvider>()));
        // Each sandboxer sweeps only its own directories, so the order here is no contract between them.
        var microvm = new MicroVmSandboxController(options.MicroVm, configured, pinner, cni, loggers.CreateLogger<MicroVmSandboxController>());
        var sandboxers = new Sandboxers([podsandbox, microvm]);
        // What each handler can do is what its sandboxer reports for it on this node.
        var handlers = configured.WithFeatures(h => sandboxers.Find(h.Sandboxer)?.FeaturesFor(h) ?? new RuntimeHandlerFeatures());

        var cdi = options.Cdi is { } cdiOptions ? OpenCdi(cdiOptions, loggers.CreateLogger("cdi")) : null;
        var nri = new NriHost(options.Nri, loggers.CreateLogger("nri"), deprecations);
        var files = new HostContainerFilesystem(options.State);
        var hooks = new NriHooks(nri, NriHooks.SpecsIn(files));

        var podIndex = new ObjectIndex<SandboxRecord>("pod sandbox");
        var containerIndex = new ObjectIndex<ContainerRecord>("container");
        var events = new LifecycleEvents(podIndex, containerIndex, logger: loggers.CreateLogger("events"));
        var containerStore = new ContainerStore(metadata);
        var sandboxStore = new SandboxStore(metadata);
        var containers = new ContainerManager(containerStore, containerIndex, podIndex, sandboxers, handlers, containerImages, specs,
            files, events, loggers.CreateLogger<ContainerManager>(), cdi, hooks);
        var pods = new PodManager(sandboxStore, podIndex, sandboxers, handlers, containers, events, loggers.CreateLogger<PodManager>(), hooks);
        await pods.RecoverAsync(cancellationToken).ConfigureAwait(false);
        // A kill -9 between making a task and persisting its row leaves a task no row owns: the pod's infra task has
        // the pod's id, a container's task the container's.
        var owned = (await sandboxStore.ListAsync(cancellationToken).ConfigureAwait(false)).Select(r => r.Id)
            .Concat((await containerStore.ListAsync(cancellationToken).ConfigureAwait(false)).Select(r => r.Id))
            .ToHashSet(StringComparer.Ordinal);
        await tasks.SweepUnownedAsync(owned, handlers.All.Where(h => h.Sandboxer == podsandbox.Name), cancellationToken).ConfigureAwait(false);
        microvm.ChooseAcceleratorsInBackground();
        // Plugins synchronize with what was recovered.
        await nri.StartAsync(new NriRuntime(pods, containers, hooks), cancellationToken).ConfigureAwait(false);
        return new LifecycleParts(pods, containers, events, cni, sandboxers, tasks, nri, cdi);
    }

    /// <summary>The CDI registry, with invalid spec files logged now and whenever the directories change.</summary>
    private static CdiRegistry OpenCdi(CdiRegistryOptions options, ILogger log)
    {
        var registry = new CdiRegistry(options);
        void Report(CdiSnapshot snapshot)
        {
            foreach (var error in snapshot.Errors) log.LogWarning("CDI: {Error}", error);
        }
        Report(registry.Current);
        registry.Refreshed += Report;
        return registry;
    }
}
