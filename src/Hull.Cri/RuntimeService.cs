using System.Text.Json;
using Hull.Api.Cri;
using Hull.Config;
using Hull.Core;
using Hull.Core.Deprecations;
using Hull.Core.Events;
using Hull.Grpc.Server;

namespace Hull.Cri;

/// <summary>
/// CRI RuntimeService. RPCs without a method here answer UNIMPLEMENTED naming the method (see
/// ServiceBinder) until the issue that builds them lands.
/// </summary>
public sealed partial class RuntimeService(HullConfig config, NodeProbe probe, EventBroadcaster<ContainerEvent> events, DeprecationRegistry deprecations)
{
    public Task<VersionResponse> Version(VersionRequest request, ServerCallContext context) =>
        Task.FromResult(new VersionResponse
        {
            Version = "0.1.0",
            RuntimeName = HullInfo.RuntimeName,
            RuntimeVersion = HullInfo.Version,
            RuntimeApiVersion = HullInfo.CriApiVersion,
        });

    public Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var response = new StatusResponse
        {
            Status = new RuntimeStatus(),
            Features = new RuntimeFeatures { SupplementalGroupsPolicy = false, UserNamespacesHostNetwork = false },
        };
        response.Status.Conditions.Add(RuntimeReadyCondition());
        response.Status.Conditions.Add(NetworkReadyCondition());
        response.Status.Conditions.Add(NoDeprecationWarningsCondition());
        foreach (var name in HandlerNames())
            response.RuntimeHandlers.Add(new RuntimeHandler
            {
                Name = name,
                // Both flip to true with the Containers and user-namespace work; until then Hull does not claim them.
                Features = new RuntimeHandlerFeatures { RecursiveReadOnlyMounts = false, UserNamespaces = false },
            });
        if (request.Verbose) response.Info.Add("config", VerboseConfig());
        return Task.FromResult(response);
    }

    public Task<RuntimeConfigResponse> RuntimeConfig(RuntimeConfigRequest request, ServerCallContext context)
    {
        var handler = DefaultHandler();
        return Task.FromResult(new RuntimeConfigResponse
        {
            Linux = new LinuxRuntimeConfiguration
            {
                CgroupDriver = handler.SystemdCgroup ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
            },
        });
    }

    /// <summary>
    /// The evented PLEG's stream: each change of a container (or of a pod sandbox, with its id as the container id) with the
    /// pod's status and all its containers' statuses as they were at that change. See RuntimeService.Containers.cs.
    /// </summary>
    public async Task GetContainerEvents(GetEventsRequest request, IServerStreamWriter<ContainerEventResponse> writer, ServerCallContext context)
    {
        using var subscription = events.Subscribe();
        await foreach (var e in subscription.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            await writer.WriteAsync(ToCriEvent(e)).ConfigureAwait(false);
    }

    private RuntimeHandlerConfig DefaultHandler() =>
        config.Runtime.Runtimes.TryGetValue(config.Runtime.DefaultRuntimeName, out var handler) ? handler : new RuntimeHandlerConfig();

    /// <summary>The default handler answers to the empty name, as the kubelet expects; every configured one by its own.</summary>
    private IEnumerable<string> HandlerNames() => config.Runtime.Runtimes.Keys.Order(StringComparer.Ordinal).Prepend("");

    private RuntimeCondition RuntimeReadyCondition()
    {
        var binary = probe.ResolveRuntimeBinary(DefaultHandler());
        return binary is not null
            ? new RuntimeCondition { Type = "RuntimeReady", Status = true }
            : new RuntimeCondition
            {
                Type = "RuntimeReady",
                Status = false,
                Reason = "OCIRuntimeNotFound",
                Message = $"runtime handler \"{config.Runtime.DefaultRuntimeName}\": OCI runtime binary " +
                          $"\"{(DefaultHandler().BinaryName is { Length: > 0 } b ? b : "runc")}\" not found",
            };
    }

    private RuntimeCondition NetworkReadyCondition()
    {
        var status = (Cni ?? new Hull.Sandbox.Cni.CniManager(Hull.Sandbox.Cni.CniOptions.From(config))).Status();
        return status.NetworkReady
            ? new RuntimeCondition { Type = "NetworkReady", Status = true }
            : new RuntimeCondition { Type = "NetworkReady", Status = false, Reason = status.Reason, Message = status.Message };
    }

    /// <summary>
    /// containerd's ContainerdHasNoDeprecationWarnings, under Hull's name: false while the node uses a
    /// deprecated feature, with a JSON map of ID → message; IDs in ignore_deprecation_warnings are left out.
    /// </summary>
    private RuntimeCondition NoDeprecationWarningsCondition()
    {
        var ignored = config.Runtime.IgnoreDeprecationWarnings.ToHashSet(StringComparer.Ordinal);
        var active = deprecations.Snapshot().Where(w => !ignored.Contains(w.Id)).ToDictionary(w => w.Id, w => w.Message);
        if (active.Count == 0) return new RuntimeCondition { Type = NoDeprecationWarnings, Status = true };
        return new RuntimeCondition
        {
            Type = NoDeprecationWarnings,
            Status = false,
            Reason = "RuntimeHasDeprecationWarnings",
            Message = JsonSerializer.Serialize(active),
        };
    }

    public const string NoDeprecationWarnings = "RuntimeHasNoDeprecationWarnings";

    private string VerboseConfig() => JsonSerializer.Serialize(new
    {
        root = config.Root,
        state = config.State,
        defaultRuntimeName = config.Runtime.DefaultRuntimeName,
        runtimes = config.Runtime.Runtimes.ToDictionary(r => r.Key, r => new
        {
            runtimeType = r.Value.RuntimeType,
            sandboxer = r.Value.Sandboxer,
            binaryName = r.Value.BinaryName,
            systemdCgroup = r.Value.SystemdCgroup,
        }),
        cni = new { binDirs = config.Runtime.Cni.BinDirs, confDir = config.Runtime.Cni.ConfDir },
        cgroupV2 = NodeProbe.CgroupV2Unified,
    });
}
