using System.Text.Json.Nodes;
using Hull.Core;
using Hull.Linux;
using Hull.Runtime.Spec;
using Hull.Runtime.Tasks;
using Hull.Sandbox.Controller;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.PodSandbox;

public sealed partial class PodSandboxController
{
    private const string InfraPathInRootfs = "/catatonit";

    /// <summary>
    /// The infra process of a pod that shares its PID namespace: <c>catatonit -P</c>, bind-mounted read-only into an
    /// empty read-only rootfs and run by runc (under conmon) in the pod's network, IPC and UTS namespaces and a new PID
    /// namespace, which the pod's containers then join through /proc/&lt;pid&gt;/ns/pid. Task id = sandbox id.
    /// With <c>pinned_images.sandbox</c> configured, the process is that image's entrypoint + cmd instead, on the pod's
    /// own snapshot of the image (mounted on the bundle's rootfs, read-only for the process, released at stop).
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
        JsonObject process;
        if (image.Length > 0)
        {
            // Recorded before the snapshot exists, so that whatever fails from here on, teardown releases it.
            pod.Instance = pod.Instance with { InfraImage = image };
            var prepared = await _infraImages!.PrepareAsync(spec.Id, image, cancellationToken).ConfigureAwait(false);
            Mounts.MountAll(prepared.Mounts, rootfs);
            process = await ImageProcessAsync(spec, prepared, rootfs, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            foreach (var d in new[] { "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
            using (File.Create(Path.Combine(rootfs, InfraPathInRootfs.TrimStart('/')))) { }
            process = new JsonObject
            {
                ["user"] = new JsonObject { ["uid"] = 65535, ["gid"] = 65535 },
                ["args"] = new JsonArray(InfraPathInRootfs, "-P"),
                ["env"] = new JsonArray("PATH=/"),
                ["cwd"] = "/",
            };
        }
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), InfraSpec(spec, instance, process, image.Length == 0).ToJsonString(), cancellationToken)
            .ConfigureAwait(false);

        var tasks = _tasksFor(spec.RuntimeHandler);
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

    /// <summary>
    /// The pause image's process, as containerd runs its sandbox container: entrypoint + cmd, the image's env (PATH
    /// defaulted), working dir, and its user (the pod's runAsUser wins), resolved against the image's /etc/passwd.
    /// </summary>
    private static async Task<JsonObject> ImageProcessAsync(PodSandboxSpec spec, InfraImage image, string rootfs, CancellationToken cancellationToken)
    {
        var config = image.Config;
        var args = config.Entrypoint.Concat(config.Cmd).ToList();
        if (args.Count == 0)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"sandbox image \"{image.Reference}\" has neither an entrypoint nor a cmd, so it cannot be the infra process of pod sandbox \"{spec.Id}\"");
        var user = await UserResolver.ResolveAsync(rootfs, image.Reference, new ContainerSecurity { RunAsUser = spec.RunAsUser }, config,
            cancellationToken).ConfigureAwait(false);
        var env = config.Env.ToList();
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal)))
            env.Insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        var userJson = new JsonObject { ["uid"] = user.Uid, ["gid"] = user.Gid };
        if (user.AdditionalGids.Count > 0) userJson["additionalGids"] = new JsonArray(user.AdditionalGids.Select(g => (JsonNode)g).ToArray());
        return new JsonObject
        {
            ["user"] = userJson,
            ["args"] = new JsonArray(args.Select(a => (JsonNode)a).ToArray()),
            ["env"] = new JsonArray(env.Select(e => (JsonNode)e).ToArray()),
            ["cwd"] = string.IsNullOrEmpty(config.WorkingDir) ? "/" : config.WorkingDir,
        };
    }

    private JsonObject InfraSpec(PodSandboxSpec spec, SandboxInstance instance, JsonObject process, bool catatonit)
    {
        int oomScoreAdj = -998;
        if (_options.RestrictOomScoreAdj) oomScoreAdj = OomScoreAdjPolicy.Restrict(oomScoreAdj, OomScoreAdjPolicy.Current());
        var namespaces = new JsonArray { new JsonObject { ["type"] = "pid" }, new JsonObject { ["type"] = "mount" } };
        void Join(string type, string path)
        {
            if (path.Length > 0) namespaces.Add(new JsonObject { ["type"] = type, ["path"] = path });
        }
        Join("network", instance.NetNsPath);
        Join("ipc", instance.IpcNsPath);
        Join("uts", instance.UtsNsPath);
        var linux = new JsonObject
        {
            ["namespaces"] = namespaces,
            ["maskedPaths"] = new JsonArray(SpecBuilder.DefaultMaskedPaths.Select(p => (JsonNode)p).ToArray()),
            ["readonlyPaths"] = new JsonArray(SpecBuilder.DefaultReadonlyPaths.Select(p => (JsonNode)p).ToArray()),
        };
        bool systemd = Systemd(spec);
        if (instance.CgroupParent.Length > 0 || systemd)
            linux["cgroupsPath"] = CgroupsPath.For(systemd ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
                instance.CgroupParent, spec.Id, spec.Id);
        process["terminal"] = false;
        process["noNewPrivileges"] = true;
        process["oomScoreAdj"] = oomScoreAdj;
        process["capabilities"] = new JsonObject();
        var mounts = new JsonArray
        {
            new JsonObject { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc", ["options"] = new JsonArray("nosuid", "noexec", "nodev") },
            new JsonObject { ["destination"] = "/dev", ["type"] = "tmpfs", ["source"] = "tmpfs", ["options"] = new JsonArray("nosuid", "strictatime", "mode=755", "size=65536k") },
        };
        if (catatonit)
            mounts.Add(new JsonObject { ["destination"] = InfraPathInRootfs, ["type"] = "bind", ["source"] = _options.InfraBinary, ["options"] = new JsonArray("rbind", "ro", "nosuid", "nodev") });
        return new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = process,
            ["root"] = new JsonObject { ["path"] = "rootfs", ["readonly"] = true },
            ["mounts"] = mounts,
            ["linux"] = linux,
            ["annotations"] = new JsonObject
            {
                [SpecBuilder.ContainerTypeAnnotation] = "sandbox",
                [SpecBuilder.SandboxIdAnnotation] = spec.Id,
                [SpecBuilder.SandboxNameAnnotation] = spec.Identity.Name,
                [SpecBuilder.SandboxNamespaceAnnotation] = spec.Identity.Namespace,
                [SpecBuilder.SandboxUidAnnotation] = spec.Identity.Uid,
            },
        };
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
