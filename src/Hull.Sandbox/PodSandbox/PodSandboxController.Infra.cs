using Hull.Core;
using Hull.Linux;
using Hull.Runtime.Cgroups;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Controller;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.PodSandbox;

public sealed partial class PodSandboxController
{
    /// <summary>
    /// The infra process of a pod that shares its PID namespace: <c>catatonit -P</c>, bind-mounted read-only into an
    /// empty read-only rootfs and run by runc (under conmon) in the pod's network, IPC and UTS namespaces and a new PID
    /// namespace, which the pod's containers then join through /proc/&lt;pid&gt;/ns/pid. Task id = sandbox id.
    /// With <c>pinned_images.sandbox</c> configured, the process is that image's entrypoint + cmd instead, on the pod's
    /// own snapshot of the image (mounted on the bundle's rootfs, read-only for the process, released at stop).
    /// The spec comes from the one spec builder (<see cref="SpecBuilder.BuildInfraAsync"/>).
    /// </summary>
    private async Task<(string TaskId, int Pid, string PidNsPath)> StartInfraAsync(Pod pod, CancellationToken cancellationToken)
    {
        var spec = pod.Spec;
        var instance = pod.Instance;
        string image = _options.SandboxImage;
        if (image.Length == 0) EnsureInfraBinary(spec);
        if (image.Length > 0 && _infraImages is null)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{spec.Id}\": the sandbox image \"{image}\" is configured, but this sandboxer was set up without access to images");
        string bundle = PodSandboxFiles.InfraBundle(instance.Directory);
        string rootfs = PodSandboxFiles.InfraRootfs(instance.Directory);
        Directory.CreateDirectory(rootfs);
        var request = new InfraSpecRequest
        {
            SandboxId = spec.Id,
            PodName = spec.Identity.Name,
            PodNamespace = spec.Identity.Namespace,
            PodUid = spec.Identity.Uid,
            Handler = HandlerOf(spec),
            RootfsPath = rootfs,
            CgroupParent = instance.CgroupParent,
            NetNsPath = instance.NetNsPath,
            IpcNsPath = instance.IpcNsPath,
            UtsNsPath = instance.UtsNsPath,
            RunAsUser = spec.RunAsUser,
            UserNamespace = instance.UserNsPath.Length > 0
                ? new UserNamespace { Path = instance.UserNsPath, UidMappings = spec.UserNamespace.Uids, GidMappings = spec.UserNamespace.Gids }
                : null,
        };
        if (image.Length > 0)
        {
            // Recorded before the snapshot exists, so that whatever fails from here on, teardown releases it.
            pod.Instance = pod.Instance with { InfraImage = image };
            var prepared = await _infraImages!.PrepareAsync(spec.Id, image, cancellationToken).ConfigureAwait(false);
            Mounts.MountAll(prepared.Mounts, rootfs);
            request = request with { Image = (prepared.Reference, prepared.Config) };
        }
        else
        {
            foreach (var d in new[] { "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
            using (File.Create(Path.Combine(rootfs, SpecBuilder.InfraBinaryPath.TrimStart('/')))) { }
            request = request with { InfraBinary = _options.InfraBinary };
        }
        var infraSpec = await _specs.BuildInfraAsync(request, cancellationToken).ConfigureAwait(false);
        await SpecWriter.WriteAsync(infraSpec, bundle, cancellationToken).ConfigureAwait(false);

        var tasks = TasksOf(spec);
        // Created and started in one step; a failure leaves nothing behind.
        var info = await tasks.RunAsync(new TaskCreateRequest(spec.Id, bundle, Path.Combine(bundle, "infra.log")) { Name = "infra-" + spec.Id },
            cancellationToken).ConfigureAwait(false);
        _logger.LogInformation("pod sandbox {Id}: infra process pid {Pid}", spec.Id, info.Pid);
        return (spec.Id, info.Pid, $"/proc/{info.Pid}/ns/pid");
    }

    /// <summary>
    /// Whether the pod's infra process is started by hull-infra rather than runc: when the helper is there, the process is
    /// catatonit (no sandbox image, whose process needs its snapshot mounted as a root) and the cgroups are cgroupfs (a
    /// systemd-driver handler's process goes into a scope that only runc asks systemd for).
    /// </summary>
    private bool StartsInfraDirectly(PodSandboxSpec spec) =>
        _options.InfraHelper.Length > 0 && _options.SandboxImage.Length == 0 && !Systemd(spec);

    /// <summary>
    /// catatonit -P through hull-infra (<see cref="DirectInfraProcess"/>): the same process runc would run (uid and gid
    /// 65535, no capabilities, no new privileges, oom_score_adj -998 or the clamp), in its own cgroup under the pod's as
    /// runc would place it, an empty read-only root in its own mount namespace. A few milliseconds instead of conmon + runc create + start.
    /// </summary>
    private async Task<InfraProcessId> StartDirectInfraAsync(Pod pod)
    {
        var spec = pod.Spec;
        var instance = pod.Instance;
        EnsureInfraBinary(spec);
        string root = PodSandboxFiles.InfraRootfs(instance.Directory);
        Directory.CreateDirectory(root);
        var cgroups = new List<string>();
        if (InfraCgroup(pod) is { } paths)
        {
            try
            {
                CgroupTree.Create(paths, CgroupLayout.Detect());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HullException(ErrorKind.Internal, $"pod sandbox \"{spec.Id}\": cannot make the infra process's cgroup: {e.Message}", e);
            }
            cgroups.AddRange(paths.Directories);
        }
        var process = await DirectInfraProcess.StartAsync(_options.InfraHelper, new DirectInfraRequest
        {
            SandboxId = spec.Id,
            Command = [_options.InfraBinary, "-P"],
            Root = root,
            PidFile = PodSandboxFiles.InfraPidFile(instance.Directory),
            Cgroups = cgroups,
            UserNsPath = instance.UserNsPath,
            NetNsPath = instance.NetNsPath,
            IpcNsPath = instance.IpcNsPath,
            UtsNsPath = instance.UtsNsPath,
            OomScoreAdj = _specs.InfraOomScoreAdjustment,
        }).ConfigureAwait(false);
        _logger.LogInformation("pod sandbox {Id}: infra process pid {Pid} (hull-infra)", spec.Id, process.Pid);
        return process;
    }

    /// <summary>
    /// Kills the infra process hull-infra started, whether the pod's record names it or only its pid file does (a crash
    /// before the record was written), then removes its cgroup and the pid file. Idempotent.
    /// </summary>
    private async Task StopDirectInfraAsync(Pod pod, CancellationToken cancellationToken)
    {
        string pidFile = PodSandboxFiles.InfraPidFile(PodSandboxFiles.SandboxDirectory(_options.StateDirectory, pod.Spec.Id));
        var process = pod.Instance.InfraStartTime > 0
            ? new InfraProcessId(pod.Instance.InfraPid, pod.Instance.InfraStartTime)
            : DirectInfraProcess.ReadPidFile(pidFile);
        if (process is null) return;
        await DirectInfraProcess.KillAsync(process.Value, InfraStopTimeout, cancellationToken).ConfigureAwait(false);
        if (InfraCgroup(pod) is { } paths) await CgroupTree.RemoveAsync(paths, _options.CgroupRemoveTimeout, cancellationToken).ConfigureAwait(false);
        File.Delete(pidFile);
    }

    /// <summary>The infra process's own cgroup, where runc would put it (&lt;pod cgroup&gt;/&lt;sandbox id&gt;); null without cgroups.</summary>
    private CgroupPaths? InfraCgroup(Pod pod)
    {
        var layout = CgroupLayout.Detect();
        if (layout.Mode == CgroupMode.None || pod.Instance.CgroupParent.Length == 0) return null;
        return CgroupPaths.ForCgroupsPath(CgroupsPath.For(CgroupDriver.Cgroupfs, pod.Instance.CgroupParent, pod.Spec.Id, pod.Spec.Id), layout);
    }

    private void EnsureInfraBinary(PodSandboxSpec spec)
    {
        if (!File.Exists(_options.InfraBinary))
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{spec.Id}\" shares its PID namespace, which needs the infra binary \"{_options.InfraBinary}\" (Debian package catatonit)");
    }

    /// <summary>Unmounts the pause image's rootfs and releases the pod's snapshot of it (idempotent).</summary>
    private async Task ReleaseInfraImageAsync(Pod pod, CancellationToken cancellationToken)
    {
        string rootfs = PodSandboxFiles.InfraRootfs(PodSandboxFiles.SandboxDirectory(_options.StateDirectory, pod.Spec.Id));
        if (Directory.Exists(rootfs)) Mounts.UnmountAll(rootfs, detach: true);
        if (_infraImages is not null) await _infraImages.ReleaseAsync(pod.Spec.Id, cancellationToken).ConfigureAwait(false);
        else _logger.LogWarning("pod sandbox {Id}: no image access to release its infra snapshot; garbage collection removes it once the pod is gone",
            pod.Spec.Id);
        pod.Instance = pod.Instance with { InfraImage = "" };
    }
}
