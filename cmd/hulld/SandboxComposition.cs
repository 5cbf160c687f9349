using System.Collections.Concurrent;
using Hull.Config;
using Hull.Core.Metadata;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox;
using Hull.Sandbox.Cni;
using Hull.Sandbox.MicroVm;
using Hull.Sandbox.Namespaces;
using Hull.Sandbox.PodSandbox;
using Hull.Sandbox.Store;
using Microsoft.Extensions.Logging;

namespace Hulld;

/// <summary>Wires pod sandboxes: runtime handlers → sandboxers (podsandbox), CNI per handler, task managers, the store.</summary>
internal static class SandboxComposition
{
    public static async Task<(SandboxManager Sandboxes, CniManager Cni, Action Shutdown)> OpenAsync(HullConfig config, MetadataStore metadata,
        Hull.Images.ImageManager images, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var runtime = config.Runtime;
        string defaultName = runtime.DefaultRuntimeName;
        RuntimeHandlerConfig HandlerConfig(string name) =>
            runtime.Runtimes.TryGetValue(name.Length == 0 ? defaultName : name, out var h) ? h : new RuntimeHandlerConfig();
        string Key(string name) => name.Length == 0 ? defaultName : name;

        var defaultCni = new CniManager(CniOptions.From(config), loggers.CreateLogger<CniManager>());
        var cnis = new ConcurrentDictionary<string, CniManager>(StringComparer.Ordinal);
        CniManager CniFor(string handler)
        {
            var h = HandlerConfig(handler);
            return h.CniConfDir.Length == 0 && h.CniMaxConfNum <= 0 ? defaultCni
                : cnis.GetOrAdd(Key(handler), _ => new CniManager(CniOptions.From(config, h), loggers.CreateLogger<CniManager>()));
        }

        var tasks = new ConcurrentDictionary<string, Lazy<TaskManager>>(StringComparer.Ordinal);
        TaskManager TasksFor(string handler) => tasks.GetOrAdd(Key(handler), name => new Lazy<TaskManager>(() =>
        {
            var h = HandlerConfig(name);
            return new TaskManager(new TaskOptions
            {
                StateDirectory = config.State,
                RuntimePath = h.BinaryName.Length > 0 ? h.BinaryName : h.RuntimePath.Length > 0 ? h.RuntimePath : Defaults.RuntimeName,
                RuntimeRoot = h.Root.Length > 0 ? h.Root : null,
                SystemdCgroup = h.SystemdCgroup,
            }, loggers.CreateLogger<TaskManager>());
        })).Value;

        // Root without CAP_SYS_RESOURCE cannot lower oom_score_adj; runc then fails unless the request is clamped.
        bool restrictOom = runtime.RestrictOomScoreAdj || !OomScoreAdjPolicy.CanLower();
        var pinner = new NamespacePinner(config.State);
        var podsandbox = new PodSandboxController(new PodSandboxOptions
        {
            StateDirectory = config.State,
            SystemdCgroup = HandlerConfig("").SystemdCgroup,
            SystemdCgroupOf = handler => HandlerConfig(handler).SystemdCgroup,
            RestrictOomScoreAdj = restrictOom,
            SandboxImage = config.Images.PinnedSandboxImage,
        }, pinner, CniFor, TasksFor, loggers.CreateLogger<PodSandboxController>(),
            new InfraImageProvider(images, loggers.CreateLogger<InfraImageProvider>()));

        // A handler with sandboxer = "microvm" runs its pods in qemu microVMs (default options until config keys map to them).
        var microvm = new MicroVmSandboxController(new MicroVmOptions { StateDirectory = config.State }, pinner, CniFor,
            loggers.CreateLogger<MicroVmSandboxController>());

        var handlers = runtime.Runtimes.ToDictionary(r => r.Key, r => new SandboxHandler(r.Key, r.Value.Sandboxer), StringComparer.Ordinal);
        var manager = new SandboxManager(new SandboxStore(metadata), [podsandbox, microvm], handlers, defaultName, loggers.CreateLogger<SandboxManager>());
        await manager.RecoverAsync(cancellationToken).ConfigureAwait(false);
        return (manager, defaultCni, () =>
        {
            podsandbox.ReleaseUnused();
            microvm.DetachAllAsync().GetAwaiter().GetResult();
        });
    }
}
