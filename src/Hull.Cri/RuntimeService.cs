using System.Text.Json;
using Hull.Api.Cri;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Streaming;
using Grpc.Core;
using Hull.Pods;
using Hull.Pods.Events;
using Hull.Runtime.Handlers;
using Hull.Sandbox.Cni;

namespace Hull.Cri;

/// <summary>
/// CRI RuntimeService: CRI messages in, calls on the pod and container lifecycle (<see cref="PodManager"/>,
/// <see cref="ContainerManager"/>), CRI messages out. RPCs not overridden here answer UNIMPLEMENTED naming the method
/// (see GrpcServer).
/// </summary>
public sealed partial class RuntimeService(CriOptions options, PodManager pods, ContainerManager containers, LifecycleEvents events,
    DeprecationRegistry deprecations, CniManager network, StreamingServer? streaming) : Api.Cri.RuntimeService.RuntimeServiceBase
{
    private RuntimeHandlers Handlers => pods.Handlers;

    public override Task<VersionResponse> Version(VersionRequest request, ServerCallContext context) =>
        Task.FromResult(new VersionResponse
        {
            Version = "0.1.0",
            RuntimeName = HullInfo.RuntimeName,
            RuntimeVersion = HullInfo.Version,
            RuntimeApiVersion = HullInfo.CriApiVersion,
        });

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var response = new StatusResponse
        {
            Status = new RuntimeStatus(),
            // Strict supplemental groups and the effective user in ContainerStatus; a pod with its own user namespace may
            // use the host's network (its /sys is then the host's, bound read-only, instead of a sysfs mount).
            Features = new RuntimeFeatures { SupplementalGroupsPolicy = true, UserNamespacesHostNetwork = true },
        };
        response.Status.Conditions.Add(RuntimeReadyCondition());
        response.Status.Conditions.Add(NetworkReadyCondition());
        response.Status.Conditions.Add(NoDeprecationWarningsCondition());
        // The default handler also answers to the empty name, as the kubelet expects.
        foreach (var (name, handler) in Handlers.All.Select(h => (h.Name, h)).Prepend(("", Handlers.Default)))
            response.RuntimeHandlers.Add(new Api.Cri.RuntimeHandler
            {
                Name = name,
                Features = new Api.Cri.RuntimeHandlerFeatures
                {
                    RecursiveReadOnlyMounts = handler.Features.RecursiveReadOnlyMounts,
                    UserNamespaces = handler.Features.UserNamespaces,
                },
            });
        if (request.Verbose) response.Info.Add("config", VerboseConfig());
        return Task.FromResult(response);
    }

    public override Task<RuntimeConfigResponse> RuntimeConfig(RuntimeConfigRequest request, ServerCallContext context) =>
        Task.FromResult(new RuntimeConfigResponse
        {
            Linux = new LinuxRuntimeConfiguration
            {
                CgroupDriver = Handlers.Default.CgroupDriver == Runtime.Spec.CgroupDriver.Systemd ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
            },
        });

    /// <summary>
    /// The evented PLEG's stream: each change of a container (or of a pod sandbox, with its id as the container id) with the
    /// pod's status and all its containers' statuses as they were at that change.
    /// </summary>
    public override async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> writer, ServerCallContext context)
    {
        using var subscription = events.Broadcaster.Subscribe("cri");
        await foreach (var e in subscription.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            await writer.WriteAsync(ToCriEvent(e)).ConfigureAwait(false);
    }

    private RuntimeCondition RuntimeReadyCondition()
    {
        var handler = Handlers.Default;
        return handler.RuntimeBinaryPath is not null
            ? new RuntimeCondition { Type = "RuntimeReady", Status = true }
            : new RuntimeCondition
            {
                Type = "RuntimeReady",
                Status = false,
                Reason = "OCIRuntimeNotFound",
                Message = $"runtime handler \"{handler.Name}\": OCI runtime binary \"{handler.RuntimeBinary}\" not found",
            };
    }

    private RuntimeCondition NetworkReadyCondition()
    {
        var status = network.Status();
        return status.NetworkReady
            ? new RuntimeCondition { Type = "NetworkReady", Status = true }
            : new RuntimeCondition { Type = "NetworkReady", Status = false, Reason = status.Reason, Message = status.Message };
    }

    /// <summary>
    /// containerd's ContainerdHasNoDeprecationWarnings under the name the Node condition has too
    /// (<see cref="DeprecationCondition"/>): false while the node uses a deprecated feature, with containerd's message,
    /// a JSON map of ID → message; IDs in ignore_deprecation_warnings are left out.
    /// </summary>
    private RuntimeCondition NoDeprecationWarningsCondition()
    {
        var active = DeprecationCondition.Active(deprecations.Snapshot(), options.IgnoredDeprecations);
        var state = DeprecationCondition.Evaluate(active);
        return new RuntimeCondition
        {
            Type = DeprecationCondition.Type,
            Status = state.NoDeprecations,
            Reason = state.Reason,
            Message = state.NoDeprecations ? "" : JsonSerializer.Serialize(active.ToDictionary(w => w.Id, w => w.Message)),
        };
    }

    private string VerboseConfig() => JsonSerializer.Serialize(new
    {
        root = options.Root,
        state = options.State,
        // containerd's name for it: critest derives the directory it probes for idmap support from this.
        stateDir = options.State,
        defaultRuntimeName = Handlers.Default.Name,
        runtimes = Handlers.All.ToDictionary(h => h.Name, h => new
        {
            runtimeType = h.RuntimeType,
            sandboxer = h.Sandboxer,
            binaryName = h.RuntimeBinary,
            systemdCgroup = h.CgroupDriver == Runtime.Spec.CgroupDriver.Systemd,
        }),
        cni = new { binDirs = options.Cni.BinDirs, confDir = options.Cni.ConfDir },
        cgroupV2 = Runtime.Cgroups.CgroupLayout.Detect().Mode == Runtime.Cgroups.CgroupMode.Unified,
    });
}
