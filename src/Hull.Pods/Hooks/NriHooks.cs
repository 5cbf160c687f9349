using Hull.Nri;
using Hull.Pods.Stores;
using Hull.Runtime.Spec;
using Hull.Sandbox.Controller;

namespace Hull.Pods.Hooks;

/// <summary>
/// The lifecycle's NRI calls (containerd's internal/cri/nri): pod and container records turned into NRI's plain records
/// at each event point. Without an NRI host, or with no plugin connected or required, every call is a no-op that builds
/// nothing, so the lifecycle pays for NRI only when it is used.
/// </summary>
public sealed class NriHooks(NriHost? host, Func<ContainerRecord, CancellationToken, Task<OciSpec?>> specOf)
{
    /// <summary>No NRI: every hook does nothing.</summary>
    public static NriHooks None { get; } = new(null, (_, _) => Task.FromResult<OciSpec?>(null));

    /// <summary>Reads the spec a container was created with from its bundle (null when there is none).</summary>
    public static Func<ContainerRecord, CancellationToken, Task<OciSpec?>> SpecsIn(Host.IContainerFilesystem files) => async (container, ct) =>
        await files.ReadSpecAsync(container.BundlePath, ct).ConfigureAwait(false) is { } json ? OciJson.Deserialize<OciSpec>(json) : null;

    /// <summary>The spec of a container, as NRI events carry it.</summary>
    public Task<OciSpec?> SpecOfAsync(ContainerRecord container, CancellationToken ct) => specOf(container, ct);

    private bool Active => host is { Active: true };

    public Task RunPodSandboxAsync(SandboxRecord pod, CancellationToken ct) =>
        Active ? host!.RunPodSandboxAsync(Pod(pod), ct) : Task.CompletedTask;

    public Task StopPodSandboxAsync(SandboxRecord pod, CancellationToken ct) =>
        Active ? host!.StopPodSandboxAsync(Pod(pod), ct) : Task.CompletedTask;

    public Task RemovePodSandboxAsync(SandboxRecord pod, CancellationToken ct) =>
        Active ? host!.RemovePodSandboxAsync(Pod(pod), ct) : Task.CompletedTask;

    public async Task UpdatePodSandboxAsync(SandboxRecord pod, CancellationToken ct)
    {
        if (!Active) return;
        var resources = Resources(pod.Spec.Resources);
        await host!.UpdatePodSandboxAsync(Pod(pod), null, resources, ct).ConfigureAwait(false);
        await host.PostUpdatePodSandboxAsync(Pod(pod), ct).ConfigureAwait(false);
    }

    /// <summary>The plugins' adjustment of a container about to be created (null when nobody adjusts).</summary>
    public async Task<NriCreateResult?> CreateContainerAsync(SandboxRecord pod, ContainerRecord container, OciSpec spec, IReadOnlyList<string> cdiDevices,
        CancellationToken ct) =>
        Active ? await host!.CreateContainerAsync(Pod(pod), Container(container, spec) with { CdiDevices = cdiDevices }, ct).ConfigureAwait(false) : null;

    public Task PostCreateContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        NotifyAsync(pod, container, host => host.PostCreateContainerAsync, ct);

    public Task StartContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        NotifyAsync(pod, container, host => host.StartContainerAsync, ct);

    public Task PostStartContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        NotifyAsync(pod, container, host => host.PostStartContainerAsync, ct);

    public Task PostUpdateContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        NotifyAsync(pod, container, host => host.PostUpdateContainerAsync, ct);

    public Task RemoveContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        NotifyAsync(pod, container, host => host.RemoveContainerAsync, ct);

    /// <summary>The resources plugins want a container updated to (null: as asked), and updates of other containers.</summary>
    public async Task<NriUpdateResult?> UpdateContainerAsync(SandboxRecord pod, ContainerRecord container, OciResources resources, CancellationToken ct) =>
        Active ? await host!.UpdateContainerAsync(Pod(pod), await ContainerAsync(container, ct).ConfigureAwait(false), resources, ct).ConfigureAwait(false) : null;

    /// <summary>Updates of other containers the plugins want once this one stopped.</summary>
    public async Task<IReadOnlyList<NriContainerUpdate>> StopContainerAsync(SandboxRecord pod, ContainerRecord container, CancellationToken ct) =>
        Active ? await host!.StopContainerAsync(Pod(pod), await ContainerAsync(container, ct).ConfigureAwait(false), ct).ConfigureAwait(false) : [];

    private async Task NotifyAsync(SandboxRecord pod, ContainerRecord container, Func<NriHost, Func<NriPod, NriContainer, CancellationToken, Task>> hook,
        CancellationToken ct)
    {
        if (!Active) return;
        await hook(host!)(Pod(pod), await ContainerAsync(container, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    private async Task<NriContainer> ContainerAsync(ContainerRecord container, CancellationToken ct) =>
        Container(container, await specOf(container, ct).ConfigureAwait(false));

    public static NriPod Pod(SandboxRecord pod)
    {
        var instance = pod.Instance;
        var namespaces = new List<OciNamespace>();
        void Add(string type, string path)
        {
            if (path.Length > 0) namespaces.Add(new OciNamespace { Type = type, Path = path });
        }
        Add(OciNamespace.Network, instance.NetNsPath);
        Add(OciNamespace.Ipc, instance.IpcNsPath);
        Add(OciNamespace.Uts, instance.UtsNsPath);
        Add(OciNamespace.Pid, instance.PidNsPath);
        return new NriPod
        {
            Id = pod.Id,
            Name = pod.Spec.Identity.Name,
            Uid = pod.Spec.Identity.Uid,
            Namespace = pod.Spec.Identity.Namespace,
            Labels = pod.Spec.Labels,
            Annotations = pod.Spec.Annotations,
            RuntimeHandler = pod.Spec.RuntimeHandler,
            CgroupParent = instance.CgroupParent,
            Namespaces = namespaces,
            PodResources = Resources(pod.Spec.Resources),
            Pid = (uint)Math.Max(0, instance.InfraPid),
            Ips = instance.Ips.Select(ip => ip.ToString()).ToList(),
        };
    }

    public static NriContainer Container(ContainerRecord container, OciSpec? spec) => new()
    {
        Id = container.Id,
        PodSandboxId = container.SandboxId,
        Name = container.Name,
        State = container.State switch
        {
            ContainerState.Created => NriContainerState.Created,
            ContainerState.Running => NriContainerState.Running,
            ContainerState.Exited => NriContainerState.Stopped,
            _ => NriContainerState.Unknown,
        },
        Labels = container.Labels,
        Annotations = container.Annotations,
        Spec = spec,
        Pid = (uint)Math.Max(0, container.Pid),
        CreatedAt = container.CreatedAt,
        StartedAt = container.StartedAt,
        FinishedAt = container.FinishedAt,
        ExitCode = container.ExitCode,
        StatusReason = container.Reason,
        StatusMessage = container.Message,
        ImageName = container.Image,
        ImageDigest = container.ImageRef,
        ImageConfigDigest = container.ImageId,
    };

    private static OciResources? Resources(SandboxResources? r) => r is null ? null : new OciResources
    {
        Cpu = r.CpuShares is null && r.CpuQuota is null && r.CpuPeriod is null ? null
            : new OciCpu { Shares = (ulong?)r.CpuShares, Quota = r.CpuQuota, Period = (ulong?)r.CpuPeriod },
        Memory = r.MemoryLimitBytes is { } limit ? new OciMemory { Limit = limit } : null,
    };
}
