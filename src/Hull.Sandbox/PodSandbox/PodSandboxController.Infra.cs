using System.Text.Json.Nodes;
using Hull.Core;
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
    /// </summary>
    private async Task<(string TaskId, int Pid, string PidNsPath)> StartInfraAsync(Pod pod, CancellationToken cancellationToken)
    {
        var spec = pod.Spec;
        var instance = pod.Instance;
        if (!File.Exists(_options.InfraBinary))
            throw new HullException(ErrorKind.FailedPrecondition,
                $"pod sandbox \"{spec.Id}\" shares its PID namespace, which needs the infra binary \"{_options.InfraBinary}\" (Debian package catatonit)");
        string bundle = PodSandboxFiles.InfraBundle(instance.Directory);
        string rootfs = Path.Combine(bundle, "rootfs");
        Directory.CreateDirectory(rootfs);
        foreach (var d in new[] { "proc", "dev", "sys" }) Directory.CreateDirectory(Path.Combine(rootfs, d));
        using (File.Create(Path.Combine(rootfs, InfraPathInRootfs.TrimStart('/')))) { }
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), InfraSpec(spec, instance).ToJsonString(), cancellationToken)
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

    private JsonObject InfraSpec(PodSandboxSpec spec, SandboxInstance instance)
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
        if (instance.CgroupParent.Length > 0 || _options.SystemdCgroup)
            linux["cgroupsPath"] = CgroupsPath.For(_options.SystemdCgroup ? CgroupDriver.Systemd : CgroupDriver.Cgroupfs,
                instance.CgroupParent, spec.Id, spec.Id);
        return new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = 65535, ["gid"] = 65535 },
                ["args"] = new JsonArray("/catatonit", "-P"),
                ["env"] = new JsonArray("PATH=/"),
                ["cwd"] = "/",
                ["noNewPrivileges"] = true,
                ["oomScoreAdj"] = oomScoreAdj,
                ["capabilities"] = new JsonObject(),
            },
            ["root"] = new JsonObject { ["path"] = "rootfs", ["readonly"] = true },
            ["mounts"] = new JsonArray
            {
                new JsonObject { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc", ["options"] = new JsonArray("nosuid", "noexec", "nodev") },
                new JsonObject { ["destination"] = "/dev", ["type"] = "tmpfs", ["source"] = "tmpfs", ["options"] = new JsonArray("nosuid", "strictatime", "mode=755", "size=65536k") },
                new JsonObject { ["destination"] = InfraPathInRootfs, ["type"] = "bind", ["source"] = _options.InfraBinary, ["options"] = new JsonArray("rbind", "ro", "nosuid", "nodev") },
            },
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
}
