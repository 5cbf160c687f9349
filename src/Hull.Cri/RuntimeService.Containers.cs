using Hull.Api.Cri;
using Hull.Core;
using Hull.Pods;
using Hull.Pods.Events;
using Hull.Pods.Stores;
using ContainerState = Hull.Pods.Stores.ContainerState;
using ContainerFilter = Hull.Pods.ContainerFilter;
using Grpc.Core;
using Hull.Runtime.Security;
using Hull.Runtime.Tasks;
using Spec = Hull.Runtime.Spec;

namespace Hull.Cri;

/// <summary>The container RPCs: CRI messages in, domain calls on <see cref="ContainerManager"/>, CRI messages out.</summary>
public sealed partial class RuntimeService
{
    public const string CheckpointUnimplementedMessage =
        "method runtime.v1.RuntimeService/CheckpointContainer: Hull does not checkpoint containers";

    public override async Task<CreateContainerResponse> CreateContainer(CreateContainerRequest request, ServerCallContext context)
    {
        var config = request.Config ?? throw new HullException(ErrorKind.InvalidArgument, "CreateContainer needs a container config");
        if (string.IsNullOrEmpty(request.PodSandboxId)) throw new HullException(ErrorKind.InvalidArgument, "CreateContainer needs a pod sandbox id");
        var id = await containers.CreateAsync(new ContainerCreateRequest(request.PodSandboxId, config.Image?.Image ?? "", ToDomain(config)),
            context.CancellationToken).ConfigureAwait(false);
        return new CreateContainerResponse { ContainerId = id };
    }

    public override async Task<StartContainerResponse> StartContainer(StartContainerRequest request, ServerCallContext context)
    {
        await containers.StartAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        return new StartContainerResponse();
    }

    public override async Task<StopContainerResponse> StopContainer(StopContainerRequest request, ServerCallContext context)
    {
        await containers.StopAsync(request.ContainerId, TimeSpan.FromSeconds(Math.Max(0, request.Timeout)), context.CancellationToken)
            .ConfigureAwait(false);
        return new StopContainerResponse();
    }

    public override async Task<RemoveContainerResponse> RemoveContainer(RemoveContainerRequest request, ServerCallContext context)
    {
        await containers.RemoveAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        return new RemoveContainerResponse();
    }

    public override Task<ListContainersResponse> ListContainers(ListContainersRequest request, ServerCallContext context)
    {
        var f = request.Filter;
        var filter = f is null ? null : new ContainerFilter(f.Id, f.State is { } s ? FromCri(s.State) : null, f.PodSandboxId,
            f.LabelSelector.Count > 0 ? f.LabelSelector : null);
        var response = new ListContainersResponse();
        foreach (var r in containers.List(filter))
        {
            if (r.State == ContainerState.Creating) continue;
            var item = new Container
            {
                Id = r.Id,
                PodSandboxId = r.SandboxId,
                Metadata = new ContainerMetadata { Name = r.Name, Attempt = r.Attempt },
                Image = new ImageSpec { Image = r.Image },
                ImageRef = r.ImageRef,
                ImageId = r.ImageId,
                State = ToCri(r.State),
                CreatedAt = UnixNanos(r.CreatedAt),
            };
            Copy(item.Labels, r.Labels);
            Copy(item.Annotations, r.Annotations);
            response.Containers.Add(item);
        }
        return Task.FromResult(response);
    }

    public override async Task<ContainerStatusResponse> ContainerStatus(ContainerStatusRequest request, ServerCallContext context)
    {
        var r = containers.Status(request.ContainerId);
        var status = ToCriStatus(r);
        var response = new ContainerStatusResponse { Status = status };
        if (request.Verbose)
        {
            string runtimeSpec = await containers.SpecJsonAsync(r, context.CancellationToken).ConfigureAwait(false) ?? "";
            response.Info["info"] = System.Text.Json.JsonSerializer.Serialize(new
            {
                sandboxID = r.SandboxId,
                pid = r.Pid,
                snapshotKey = r.Id,
                snapshotter = r.Snapshotter,
                bundle = r.BundlePath,
                runtimeSpec = runtimeSpec.Length > 0 ? System.Text.Json.JsonDocument.Parse(runtimeSpec).RootElement : default(System.Text.Json.JsonElement?),
            });
        }
        return response;
    }

    /// <summary>A container record as CRI's ContainerStatus (ContainerStatus, events, PodSandboxStatus).</summary>
    internal static Api.Cri.ContainerStatus ToCriStatus(ContainerRecord r)
    {
        var status = new Api.Cri.ContainerStatus
        {
            Id = r.Id,
            Metadata = new ContainerMetadata { Name = r.Name, Attempt = r.Attempt },
            State = ToCri(r.State),
            CreatedAt = UnixNanos(r.CreatedAt),
            StartedAt = r.StartedAt is { } started ? UnixNanos(started) : 0,
            FinishedAt = r.FinishedAt is { } finished ? UnixNanos(finished) : 0,
            ExitCode = r.ExitCode,
            Image = new ImageSpec { Image = r.Image },
            ImageRef = r.ImageRef,
            ImageId = r.ImageId,
            Reason = r.Reason,
            Message = r.Message,
            LogPath = r.LogPath,
            StopSignal = ToCriSignal(r.StopSignal),
        };
        if (r.User is { } user)
        {
            status.User = new ContainerUser { Linux = new LinuxContainerUser { Uid = user.Uid, Gid = user.Gid } };
            status.User.Linux.SupplementalGroups.AddRange(user.SupplementalGroups);
        }
        Copy(status.Labels, r.Labels);
        Copy(status.Annotations, r.Annotations);
        foreach (var m in r.Mounts)
            status.Mounts.Add(new Mount
            {
                ContainerPath = m.ContainerPath,
                HostPath = m.HostPath,
                Readonly = m.Readonly,
                Propagation = m.Propagation switch
                {
                    nameof(Spec.MountPropagation.HostToContainer) => MountPropagation.PropagationHostToContainer,
                    nameof(Spec.MountPropagation.Bidirectional) => MountPropagation.PropagationBidirectional,
                    _ => MountPropagation.PropagationPrivate,
                },
                // An image volume names its image as asked, with the id it resolved to (what PullImage returned; KEP-5365).
                Image = m.Image is { } volume ? new ImageSpec { Image = volume.Image, ImageRef = volume.ImageId } : null,
                ImageSubPath = m.Image?.SubPath ?? "",
            });
        if (r.Resources is { } res)
            status.Resources = new ContainerResources
            {
                Linux = new LinuxContainerResources
                {
                    CpuShares = (long)(res.CpuShares ?? 0),
                    CpuQuota = res.CpuQuota ?? 0,
                    CpuPeriod = (long)(res.CpuPeriod ?? 0),
                    CpusetCpus = res.CpusetCpus ?? "",
                    CpusetMems = res.CpusetMems ?? "",
                    MemoryLimitInBytes = res.MemoryLimitBytes ?? 0,
                    MemorySwapLimitInBytes = res.MemorySwapLimitBytes ?? 0,
                },
            };
        return status;
    }

    public override async Task<ExecSyncResponse> ExecSync(ExecSyncRequest request, ServerCallContext context)
    {
        var result = await containers.ExecSyncAsync(request.ContainerId, request.Cmd.ToList(), TimeSpan.FromSeconds(Math.Max(0, request.Timeout)),
            context.CancellationToken).ConfigureAwait(false);
        return new ExecSyncResponse
        {
            Stdout = Google.Protobuf.ByteString.CopyFrom(result.Stdout),
            Stderr = Google.Protobuf.ByteString.CopyFrom(result.Stderr),
            ExitCode = result.ExitCode,
        };
    }

    public override async Task<UpdateContainerResourcesResponse> UpdateContainerResources(UpdateContainerResourcesRequest request, ServerCallContext context)
    {
        var r = request.Linux ?? throw new HullException(ErrorKind.InvalidArgument, "UpdateContainerResources needs linux resources");
        if (r.MemoryLimitInBytes < 0 || r.CpuShares < 0 || r.CpuPeriod < 0)
            throw new HullException(ErrorKind.InvalidArgument, $"invalid resources for container \"{request.ContainerId}\": negative values");
        await containers.UpdateResourcesAsync(request.ContainerId, new TaskResources
        {
            CpuShares = r.CpuShares > 0 ? (ulong)r.CpuShares : null,
            CpuQuota = r.CpuQuota != 0 ? r.CpuQuota : null,
            CpuPeriod = r.CpuPeriod > 0 ? (ulong)r.CpuPeriod : null,
            CpusetCpus = r.CpusetCpus.Length > 0 ? r.CpusetCpus : null,
            CpusetMems = r.CpusetMems.Length > 0 ? r.CpusetMems : null,
            MemoryLimitBytes = r.MemoryLimitInBytes > 0 ? r.MemoryLimitInBytes : null,
            MemorySwapLimitBytes = r.MemorySwapLimitInBytes > 0 ? r.MemorySwapLimitInBytes : null,
            Unified = r.Unified.Count > 0 ? new Dictionary<string, string>(r.Unified) : null,
        }, context.CancellationToken).ConfigureAwait(false);
        return new UpdateContainerResourcesResponse();
    }

    public override async Task<ReopenContainerLogResponse> ReopenContainerLog(ReopenContainerLogRequest request, ServerCallContext context)
    {
        await containers.ReopenLogAsync(request.ContainerId, context.CancellationToken).ConfigureAwait(false);
        return new ReopenContainerLogResponse();
    }

    public override async Task<ContainerStatsResponse> ContainerStats(ContainerStatsRequest request, ServerCallContext context) =>
        new() { Stats = await StatsOf(containers.Status(request.ContainerId), context.CancellationToken).ConfigureAwait(false) };

    public override async Task<ListContainerStatsResponse> ListContainerStats(ListContainerStatsRequest request, ServerCallContext context)
    {
        var f = request.Filter;
        var response = new ListContainerStatsResponse();
        foreach (var r in containers.List(new ContainerFilter(f?.Id, ContainerState.Running, f?.PodSandboxId,
                     f is { LabelSelector.Count: > 0 } ? f.LabelSelector : null)))
        {
            try
            {
                response.Stats.Add(await StatsOf(r, context.CancellationToken).ConfigureAwait(false));
            }
            catch (HullException) { } // removed or exited meanwhile
        }
        return response;
    }

    public override Task<CheckpointContainerResponse> CheckpointContainer(CheckpointContainerRequest request, ServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, CheckpointUnimplementedMessage));

    private async Task<Api.Cri.ContainerStats> StatsOf(ContainerRecord r, CancellationToken cancellationToken)
    {
        var (cgroup, bytes, inodes) = await containers.StatsAsync(r.Id, cancellationToken).ConfigureAwait(false);
        long at = UnixNanos(cgroup.Timestamp);
        var attributes = new ContainerAttributes { Id = r.Id, Metadata = new ContainerMetadata { Name = r.Name, Attempt = r.Attempt } };
        Copy(attributes.Labels, r.Labels);
        Copy(attributes.Annotations, r.Annotations);
        return new Api.Cri.ContainerStats
        {
            Attributes = attributes,
            Cpu = new CpuUsage { Timestamp = at, UsageCoreNanoSeconds = new UInt64Value { Value = cgroup.CpuUsageNanoseconds } },
            Memory = new MemoryUsage
            {
                Timestamp = at,
                WorkingSetBytes = new UInt64Value { Value = cgroup.MemoryWorkingSetBytes },
                UsageBytes = new UInt64Value { Value = cgroup.MemoryUsageBytes },
                RssBytes = new UInt64Value { Value = cgroup.MemoryRssBytes },
                PageFaults = new UInt64Value { Value = cgroup.PageFaults },
                MajorPageFaults = new UInt64Value { Value = cgroup.MajorPageFaults },
                AvailableBytes = cgroup.MemoryLimitBytes is { } limit
                    ? new UInt64Value { Value = limit > cgroup.MemoryWorkingSetBytes ? limit - cgroup.MemoryWorkingSetBytes : 0 }
                    : null,
            },
            WritableLayer = new FilesystemUsage
            {
                Timestamp = at,
                FsId = new FilesystemIdentifier { Mountpoint = Path.GetDirectoryName(r.BundlePath) ?? "" },
                UsedBytes = new UInt64Value { Value = (ulong)Math.Max(0, bytes) },
                InodesUsed = new UInt64Value { Value = (ulong)Math.Max(0, inodes) },
            },
        };
    }

    // ---------------------------------------------------------------- events

    /// <summary>
    /// An event as containerd's CRI sends it (internal/cri/server/events.go generateAndSendContainerEvent): the pod's status
    /// and its containers' statuses from the snapshot taken when the change happened. The pod status is absent only when
    /// the pod is gone; the kubelet then ignores the event and relists.
    /// </summary>
    private static ContainerEventResponse ToCriEvent(LifecycleEvent e)
    {
        var response = new ContainerEventResponse
        {
            ContainerId = e.ContainerId,
            ContainerEventType = e.Kind switch
            {
                LifecycleEventKind.Created => ContainerEventType.ContainerCreatedEvent,
                LifecycleEventKind.Started => ContainerEventType.ContainerStartedEvent,
                LifecycleEventKind.Stopped => ContainerEventType.ContainerStoppedEvent,
                _ => ContainerEventType.ContainerDeletedEvent,
            },
            CreatedAt = UnixNanos(e.At),
        };
        if (e.Pod is not null) response.PodSandboxStatus = ToCriStatus(e.Pod);
        foreach (var c in e.Containers) response.ContainersStatuses.Add(ToCriStatus(c));
        return response;
    }

    // ---------------------------------------------------------------- translation

    internal static Spec.ContainerConfig ToDomain(ContainerConfig config)
    {
        var m = config.Metadata ?? throw new HullException(ErrorKind.InvalidArgument, "CreateContainer needs container metadata");
        var linux = config.Linux;
        var sc = linux?.SecurityContext;
        var r = linux?.Resources;
        return new Spec.ContainerConfig
        {
            Name = m.Name,
            Attempt = m.Attempt,
            Command = config.Command.ToList(),
            Args = config.Args.ToList(),
            Env = config.Envs.Select(e => new Spec.EnvVar(e.Key, e.Value)).ToList(),
            WorkingDir = config.WorkingDir.Length > 0 ? config.WorkingDir : null,
            Mounts = config.Mounts.Select(x => new Spec.ContainerMount
            {
                ContainerPath = x.ContainerPath,
                HostPath = x.HostPath,
                Image = x.Image is { Image.Length: > 0 } image ? image.Image : null,
                ImageSubPath = x.ImageSubPath.Length > 0 ? x.ImageSubPath : null,
                Readonly = x.Readonly,
                RecursiveReadOnly = x.RecursiveReadOnly,
                SelinuxRelabel = x.SelinuxRelabel,
                UidMappings = ToDomain(x.UidMappings),
                GidMappings = ToDomain(x.GidMappings),
                Propagation = x.Propagation switch
                {
                    MountPropagation.PropagationHostToContainer => Spec.MountPropagation.HostToContainer,
                    MountPropagation.PropagationBidirectional => Spec.MountPropagation.Bidirectional,
                    _ => Spec.MountPropagation.Private,
                },
            }).ToList(),
            Devices = config.Devices.Select(d => new Spec.ContainerDevice(d.ContainerPath, d.HostPath,
                d.Permissions.Length > 0 ? d.Permissions : "rwm")).ToList(),
            CdiDevices = config.CDIDevices.Select(d => d.Name).ToList(),
            Labels = new Dictionary<string, string>(config.Labels, StringComparer.Ordinal),
            Annotations = new Dictionary<string, string>(config.Annotations, StringComparer.Ordinal),
            Tty = config.Tty,
            Stdin = config.Stdin,
            StdinOnce = config.StdinOnce,
            LogPath = config.LogPath.Length > 0 ? config.LogPath : null,
            StopSignal = config.StopSignal == Signal.RuntimeDefault ? null : SignalName(config.StopSignal),
            Resources = r is null ? null : new Spec.LinuxResources
            {
                CpuPeriod = r.CpuPeriod,
                CpuQuota = r.CpuQuota,
                CpuShares = r.CpuShares,
                MemoryLimitInBytes = r.MemoryLimitInBytes,
                MemorySwapLimitInBytes = r.MemorySwapLimitInBytes,
                OomScoreAdj = r.OomScoreAdj,
                CpusetCpus = r.CpusetCpus.Length > 0 ? r.CpusetCpus : null,
                CpusetMems = r.CpusetMems.Length > 0 ? r.CpusetMems : null,
                HugepageLimits = r.HugepageLimits.Select(h => new Spec.HugepageLimit(h.PageSize, h.Limit)).ToList(),
                Unified = new Dictionary<string, string>(r.Unified, StringComparer.Ordinal),
            },
            Security = sc is null ? new Spec.ContainerSecurity { PidMode = Spec.PidNamespaceMode.Container } : new Spec.ContainerSecurity
            {
                Privileged = sc.Privileged,
                RunAsUser = sc.RunAsUser?.Value,
                RunAsUsername = sc.RunAsUsername.Length > 0 ? sc.RunAsUsername : null,
                RunAsGroup = sc.RunAsGroup?.Value,
                SupplementalGroups = sc.SupplementalGroups.ToList(),
                SupplementalGroupsPolicy = sc.SupplementalGroupsPolicy == SupplementalGroupsPolicy.Strict
                    ? Spec.SupplementalGroupsPolicy.Strict : Spec.SupplementalGroupsPolicy.Merge,
                ReadonlyRootfs = sc.ReadonlyRootfs,
                NoNewPrivs = sc.NoNewPrivs,
                Capabilities = sc.Capabilities is { } caps
                    ? new Spec.CapabilityChanges { Add = caps.AddCapabilities.ToList(), Drop = caps.DropCapabilities.ToList() }
                    : null,
#pragma warning disable CS0612 // the deprecated string forms are honoured on purpose: older kubelets send only them
                Seccomp = Profile(sc.Seccomp) ?? LegacyProfile(sc.SeccompProfilePath, "seccomp", m.Name),
                AppArmor = Profile(sc.Apparmor) ?? LegacyProfile(sc.ApparmorProfile, "AppArmor", m.Name),
#pragma warning restore CS0612
                MaskedPaths = sc.MaskedPaths.Count > 0 ? sc.MaskedPaths.ToList() : null,
                ReadonlyPaths = sc.ReadonlyPaths.Count > 0 ? sc.ReadonlyPaths.ToList() : null,
                PidMode = (sc.NamespaceOptions?.Pid ?? NamespaceMode.Container) switch
                {
                    NamespaceMode.Pod => Spec.PidNamespaceMode.Pod,
                    NamespaceMode.Node => Spec.PidNamespaceMode.Node,
                    NamespaceMode.Target => Spec.PidNamespaceMode.Target,
                    _ => Spec.PidNamespaceMode.Container,
                },
                UserNamespace = ToDomain(sc.NamespaceOptions?.UsernsOptions),
            },
        };
    }

    private static Spec.SecurityProfile? Profile(SecurityProfile? profile) => profile is null ? null : profile.ProfileType switch
    {
        SecurityProfile.Types.ProfileType.Unconfined => Spec.SecurityProfile.Unconfined,
        SecurityProfile.Types.ProfileType.Localhost => Spec.SecurityProfile.Localhost(profile.LocalhostRef),
        _ => Spec.SecurityProfile.RuntimeDefault,
    };

    /// <summary>
    /// The deprecated string form of a profile (seccomp_profile_path, apparmor_profile), which older kubelets send and
    /// which counts only when the structured field is absent (containerd's sputil.generateSecurityProfile):
    /// "runtime/default" and "docker/default" are RuntimeDefault, "unconfined" is Unconfined, "localhost/&lt;ref&gt;" is
    /// Localhost, empty is not set; anything else is InvalidArgument.
    /// </summary>
    internal static Spec.SecurityProfile? LegacyProfile(string value, string kind, string containerName) => value switch
    {
        "" => null,
        "runtime/default" or "docker/default" => Spec.SecurityProfile.RuntimeDefault,
        "unconfined" => Spec.SecurityProfile.Unconfined,
        _ when value.StartsWith(SeccompProfiles.LocalhostPrefix, StringComparison.Ordinal) && value.Length > SeccompProfiles.LocalhostPrefix.Length =>
            Spec.SecurityProfile.Localhost(value[SeccompProfiles.LocalhostPrefix.Length..]),
        _ => throw new HullException(ErrorKind.InvalidArgument,
            $"container \"{containerName}\": invalid {kind} profile \"{value}\": expected runtime/default, docker/default, unconfined or localhost/<profile>"),
    };

    /// <summary>"SIGRTMINPLUS1" → "SIGRTMIN+1", as <see cref="Hull.Linux.Processes.Signals.TryParse"/> reads it.</summary>
    private static string SignalName(Signal signal)
    {
        var name = (Enum.GetName(signal) ?? "").ToUpperInvariant();
        return name.Replace("PLUS", "+", StringComparison.Ordinal).Replace("MINUS", "-", StringComparison.Ordinal);
    }

    private static readonly Dictionary<int, Signal> CriSignals = BuildCriSignals();

    private static Dictionary<int, Signal> BuildCriSignals()
    {
        var map = new Dictionary<int, Signal>();
        foreach (var value in Enum.GetValues<Signal>().Order())
        {
            if (value == Signal.RuntimeDefault) continue;
            if (Hull.Linux.Processes.Signals.TryParse(SignalName(value)) is { } number) map.TryAdd(number, value);
        }
        return map;
    }

    /// <summary>A signal number as CRI's enum (the first name in the enum's order: SIGCHLD before SIGCLD).</summary>
    private static Signal ToCriSignal(int number) => CriSignals.GetValueOrDefault(number, Signal.RuntimeDefault);

    private static Api.Cri.ContainerState ToCri(ContainerState state) => state switch
    {
        ContainerState.Running => Api.Cri.ContainerState.ContainerRunning,
        ContainerState.Exited => Api.Cri.ContainerState.ContainerExited,
        ContainerState.Unknown => Api.Cri.ContainerState.ContainerUnknown,
        _ => Api.Cri.ContainerState.ContainerCreated,
    };

    private static ContainerState FromCri(Api.Cri.ContainerState state) => state switch
    {
        Api.Cri.ContainerState.ContainerRunning => ContainerState.Running,
        Api.Cri.ContainerState.ContainerExited => ContainerState.Exited,
        Api.Cri.ContainerState.ContainerUnknown => ContainerState.Unknown,
        _ => ContainerState.Created,
    };
}
