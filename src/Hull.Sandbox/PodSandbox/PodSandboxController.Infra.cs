using Hull.Core;
using Hull.Linux;
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
        if (image.Length == 0 && !File.Exists(_options.InfraBinary))
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{spec.Id}\" shares its PID namespace, which needs the infra binary \"{_options.InfraBinary}\" (Debian package catatonit)");
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
        var info = await tasks.CreateAsync(new TaskCreateRequest(spec.Id, bundle, Path.Combine(bundle, "infra.log")) { Name = "infra-" + spec.Id },
            cancellationToken).ConfigureAwait(false);
        try
        {
            await tasks.StartAsync(spec.Id, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            try
            {
                await tasks.StopAsync(spec.Id, TimeSpan.FromSeconds(2), cancellationToken: CancellationToken.None).ConfigureAwait(false);
                await tasks.DeleteAsync(spec.Id, CancellationToken.None).ConfigureAwait(false);
            }
            catch (HullException e)
            {
                _logger.LogWarning("pod sandbox {Id}: removing the infra process that failed to start: {Error}", spec.Id, e.Message);
            }
            throw;
        }
        _logger.LogInformation("pod sandbox {Id}: infra process pid {Pid}", spec.Id, info.Pid);
        return (spec.Id, info.Pid, $"/proc/{info.Pid}/ns/pid");
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
