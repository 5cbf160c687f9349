using Hull.Api.Cri;
using Hull.Core;
using Grpc.Core;
using Hull.Pods;
using Hull.Pods.Stores;
using Hull.Sandbox.Controller;
using Domain = Hull.Sandbox.Controller;

namespace Hull.Cri;

/// <summary>The pod sandbox RPCs: CRI messages in, domain calls on <see cref="PodManager"/>, CRI messages out.</summary>
public sealed partial class RuntimeService
{
    public override async Task<RunPodSandboxResponse> RunPodSandbox(RunPodSandboxRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw new HullException(ErrorKind.InvalidArgument, "RunPodSandbox needs a sandbox config");
        var spec = ToSpec(Ids.New(), config, request.RuntimeHandler);
        var id = await pods.RunAsync(spec, context.CancellationToken).ConfigureAwait(false);
        return new RunPodSandboxResponse { PodSandboxId = id };
    }

    public override async Task<StopPodSandboxResponse> StopPodSandbox(StopPodSandboxRequest request, ServerCallContext context)
    {
        await pods.StopAsync(request.PodSandboxId, context.CancellationToken).ConfigureAwait(false);
        return new StopPodSandboxResponse();
    }

    public override async Task<RemovePodSandboxResponse> RemovePodSandbox(RemovePodSandboxRequest request, ServerCallContext context)
    {
        await pods.RemoveAsync(request.PodSandboxId, context.CancellationToken).ConfigureAwait(false);
        return new RemovePodSandboxResponse();
    }

    public override async Task<PodSandboxStatusResponse> PodSandboxStatus(PodSandboxStatusRequest request, ServerCallContext context)
    {
        var (record, info) = await pods.StatusAsync(request.PodSandboxId, request.Verbose, context.CancellationToken).ConfigureAwait(false);
        var status = ToCriStatus(record);
        var response = new PodSandboxStatusResponse { Status = status, Timestamp = UnixNanos(DateTimeOffset.UtcNow) };
        // The kubelet's evented PLEG takes the pod's container statuses from here instead of asking for each one.
        foreach (var c in containers.OfPod(record.Id)) response.ContainersStatuses.Add(ToCriStatus(c));
        Copy(response.Info, info);
        return response;
    }

    /// <summary>A pod record as CRI's PodSandboxStatus (PodSandboxStatus, container events).</summary>
    internal static Api.Cri.PodSandboxStatus ToCriStatus(SandboxRecord record)
    {
        var spec = record.Spec;
        var status = new Api.Cri.PodSandboxStatus
        {
            Id = record.Id,
            Metadata = Metadata(spec.Identity),
            State = ToCri(record.State),
            CreatedAt = UnixNanos(record.CreatedAt),
            Network = new PodSandboxNetworkStatus(),
            Linux = new LinuxPodSandboxStatus
            {
                Namespaces = new Namespace
                {
                    Options = new NamespaceOption
                    {
                        Network = (Api.Cri.NamespaceMode)spec.NetworkMode,
                        Pid = (Api.Cri.NamespaceMode)spec.PidMode,
                        Ipc = (Api.Cri.NamespaceMode)spec.IpcMode,
                    },
                },
            },
            RuntimeHandler = spec.RuntimeHandler,
        };
        var ips = record.Instance.Ips;
        if (ips.Count > 0 && spec.NetworkMode != Domain.NamespaceMode.Node)
        {
            status.Network.Ip = ips[0].ToString();
            foreach (var ip in ips.Skip(1)) status.Network.AdditionalIps.Add(new PodIP { Ip = ip.ToString() });
        }
        Copy(status.Labels, spec.Labels);
        Copy(status.Annotations, spec.Annotations);
        return status;
    }

    public override Task<ListPodSandboxResponse> ListPodSandbox(ListPodSandboxRequest request, ServerCallContext context)
    {
        var filter = request.Filter is { } f
            ? new SandboxFilter(f.Id, f.State is { } s ? (s.State == PodSandboxState.SandboxReady ? SandboxState.Ready : SandboxState.NotReady) : null,
                f.LabelSelector.Count > 0 ? f.LabelSelector : null)
            : null;
        var response = new ListPodSandboxResponse();
        foreach (var record in pods.List(filter))
        {
            var item = new PodSandbox
            {
                Id = record.Id,
                Metadata = Metadata(record.Spec.Identity),
                State = ToCri(record.State),
                CreatedAt = UnixNanos(record.CreatedAt),
                RuntimeHandler = record.Spec.RuntimeHandler,
            };
            Copy(item.Labels, record.Spec.Labels);
            Copy(item.Annotations, record.Spec.Annotations);
            response.Items.Add(item);
        }
        return Task.FromResult(response);
    }

    public override async Task<PodSandboxStatsResponse> PodSandboxStats(PodSandboxStatsRequest request, ServerCallContext context)
    {
        var (record, _) = await pods.StatusAsync(request.PodSandboxId, verbose: false, context.CancellationToken).ConfigureAwait(false);
        return new PodSandboxStatsResponse { Stats = await StatsOf(record, context.CancellationToken).ConfigureAwait(false) };
    }

    public override async Task<ListPodSandboxStatsResponse> ListPodSandboxStats(ListPodSandboxStatsRequest request, ServerCallContext context)
    {
        var f = request.Filter;
        var records = pods.List(new SandboxFilter(f?.Id, SandboxState.Ready, f is { LabelSelector.Count: > 0 } ? f.LabelSelector : null));
        var response = new ListPodSandboxStatsResponse();
        foreach (var record in records)
        {
            try
            {
                response.Stats.Add(await StatsOf(record, context.CancellationToken).ConfigureAwait(false));
            }
            catch (HullException e) when (e.Kind == ErrorKind.NotFound)
            {
                // removed meanwhile
            }
        }
        return response;
    }

    public override async Task<UpdatePodSandboxResourcesResponse> UpdatePodSandboxResources(UpdatePodSandboxResourcesRequest request, ServerCallContext context)
    {
        var r = request.Resources;
        var resources = r is null ? new SandboxResources()
            : new SandboxResources(r.CpuShares > 0 ? r.CpuShares : null, r.CpuQuota != 0 ? r.CpuQuota : null, r.CpuPeriod > 0 ? r.CpuPeriod : null,
                r.MemoryLimitInBytes > 0 ? r.MemoryLimitInBytes : null);
        await pods.UpdateResourcesAsync(request.PodSandboxId, resources, context.CancellationToken).ConfigureAwait(false);
        return new UpdatePodSandboxResourcesResponse();
    }

    private async Task<Api.Cri.PodSandboxStats> StatsOf(SandboxRecord record, CancellationToken cancellationToken)
    {
        var metrics = await pods.MetricsAsync(record.Id, cancellationToken).ConfigureAwait(false);
        long at = UnixNanos(metrics.Timestamp);
        var attributes = new PodSandboxAttributes { Id = record.Id, Metadata = Metadata(record.Spec.Identity) };
        Copy(attributes.Labels, record.Spec.Labels);
        Copy(attributes.Annotations, record.Spec.Annotations);
        var network = new NetworkUsage { Timestamp = at };
        foreach (var i in metrics.Interfaces)
        {
            var usage = new NetworkInterfaceUsage
            {
                Name = i.Name,
                RxBytes = new UInt64Value { Value = i.RxBytes },
                RxErrors = new UInt64Value { Value = i.RxErrors },
                TxBytes = new UInt64Value { Value = i.TxBytes },
                TxErrors = new UInt64Value { Value = i.TxErrors },
            };
            if (i.Name == "eth0") network.DefaultInterface = usage;
            else network.Interfaces.Add(usage);
        }
        return new Api.Cri.PodSandboxStats
        {
            Attributes = attributes,
            Linux = new LinuxPodSandboxStats
            {
                Cpu = new CpuUsage { Timestamp = at, UsageCoreNanoSeconds = new UInt64Value { Value = metrics.CpuUsageNanos } },
                Memory = new MemoryUsage { Timestamp = at, WorkingSetBytes = new UInt64Value { Value = metrics.MemoryWorkingSetBytes } },
                Network = network,
            },
        };
    }

    // ---------------------------------------------------------------- translation

    internal static PodSandboxSpec ToSpec(string id, PodSandboxConfig config, string runtimeHandler)
    {
        var m = config.Metadata ?? throw new HullException(ErrorKind.InvalidArgument, "RunPodSandbox needs sandbox metadata");
        var linux = config.Linux;
        var ns = linux?.SecurityContext?.NamespaceOptions;
        var resources = linux?.Resources;
        return new PodSandboxSpec
        {
            Id = id,
            Identity = new PodIdentity(m.Name, m.Namespace, m.Uid, m.Attempt),
            RuntimeHandler = runtimeHandler,
            Hostname = config.Hostname,
            LogDirectory = config.LogDirectory,
            Dns = config.DnsConfig is { } dns ? new PodDns(dns.Servers.ToList(), dns.Searches.ToList(), dns.Options.ToList()) : null,
            PortMappings = config.PortMappings.Select(p => new PodPortMapping(p.Protocol switch
            {
                Protocol.Udp => "UDP",
                Protocol.Sctp => "SCTP",
                _ => "TCP",
            }, p.ContainerPort, p.HostPort, p.HostIp)).ToList(),
            Labels = new Dictionary<string, string>(config.Labels, StringComparer.Ordinal),
            Annotations = new Dictionary<string, string>(config.Annotations, StringComparer.Ordinal),
            CgroupParent = linux?.CgroupParent ?? "",
            NetworkMode = ns is null ? Domain.NamespaceMode.Pod : (Domain.NamespaceMode)ns.Network,
            PidMode = ns is null ? Domain.NamespaceMode.Container : (Domain.NamespaceMode)ns.Pid,
            IpcMode = ns is null ? Domain.NamespaceMode.Pod : (Domain.NamespaceMode)ns.Ipc,
            Sysctls = linux is null ? new Dictionary<string, string>() : new Dictionary<string, string>(linux.Sysctls, StringComparer.Ordinal),
            Resources = resources is null ? null : new SandboxResources(resources.CpuShares > 0 ? resources.CpuShares : null,
                resources.CpuQuota != 0 ? resources.CpuQuota : null, resources.CpuPeriod > 0 ? resources.CpuPeriod : null,
                resources.MemoryLimitInBytes > 0 ? resources.MemoryLimitInBytes : null),
            Privileged = linux?.SecurityContext?.Privileged ?? false,
            RunAsUser = linux?.SecurityContext?.RunAsUser?.Value,
            SupplementalGroups = linux?.SecurityContext?.SupplementalGroups.ToList() ?? [],
            UserNamespace = ToDomain(ns?.UsernsOptions),
        };
    }

    /// <summary>CRI's userns_options; absent means the host's user namespace, as for a kubelet that predates them.</summary>
    internal static Runtime.Spec.UserNamespaceOptions ToDomain(UserNamespace? userns) => userns is null
        ? Runtime.Spec.UserNamespaceOptions.Node
        : new Runtime.Spec.UserNamespaceOptions(userns.Mode switch
            {
                Api.Cri.NamespaceMode.Pod => Runtime.Spec.UserNamespaceMode.Pod,
                Api.Cri.NamespaceMode.Node => Runtime.Spec.UserNamespaceMode.Node,
                Api.Cri.NamespaceMode.Container => Runtime.Spec.UserNamespaceMode.Container,
                _ => Runtime.Spec.UserNamespaceMode.Target,
            }, ToDomain(userns.Uids), ToDomain(userns.Gids));

    internal static IReadOnlyList<Runtime.Spec.OciIdMapping> ToDomain(IEnumerable<IDMapping> mappings) =>
        mappings.Select(m => new Runtime.Spec.OciIdMapping(m.ContainerId, m.HostId, m.Length)).ToList();

    private static void Copy(Google.Protobuf.Collections.MapField<string, string> to, IReadOnlyDictionary<string, string> from)
    {
        foreach (var (k, v) in from) to[k] = v;
    }

    private static PodSandboxMetadata Metadata(PodIdentity identity) => new()
    {
        Name = identity.Name,
        Namespace = identity.Namespace,
        Uid = identity.Uid,
        Attempt = identity.Attempt,
    };

    private static PodSandboxState ToCri(SandboxState state) =>
        state == SandboxState.Ready ? PodSandboxState.SandboxReady : PodSandboxState.SandboxNotready;

    private static long UnixNanos(DateTimeOffset at) => (at.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
}
