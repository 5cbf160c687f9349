using Hull.Linux;
using Hull.Runtime.Cgroups;
using Hull.Sandbox.Namespaces;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.PodSandbox;

public sealed partial class PodSandboxController
{
    /// <summary>
    /// At start, after recovery: removes what a pod the store does not know left on the node (a crash between making
    /// something and persisting it, or a store restored from elsewhere): namespace pins under <c>&lt;state&gt;/ns/</c> (and
    /// a namespace-holder process a kill -9 left),
    /// sandbox directories under <c>&lt;state&gt;/sandboxes/</c> (their shm and infra rootfs mounts first), and the default
    /// pod cgroup <c>/hull/&lt;id&gt;</c> (or the one Hull made under the kubelet's parent). Each removal is logged. The orphan's infra snapshot is left to garbage collection
    /// (it is no root once the pod is not in the store). Returns the ids swept.
    /// </summary>
    /// <param name="known">Every sandbox id in the store, whatever its sandboxer and state.</param>
    public async Task<IReadOnlyList<string>> SweepOrphansAsync(IReadOnlySet<string> known, CancellationToken cancellationToken)
    {
        var swept = new SortedSet<string>(StringComparer.Ordinal);
        // Pod cgroups Hull made under the kubelet's parent, by sandbox id, as the sandbox directories record them.
        var madeCgroups = new Dictionary<string, string>(StringComparer.Ordinal);
        // A process that held a new user namespace for the few milliseconds it takes to pin it, left by a kill -9.
        foreach (var pid in Linux.Namespaces.NamespaceHolder.KillOrphans())
            _logger.LogWarning("killed process {Pid}, a namespace holder a previous hulld left behind", pid);
        foreach (var id in _pinner.ListSandboxIds())
        {
            if (known.Contains(id) || _pods.Contains(id) || !NamespacePinner.IsValidId(id)) continue;
            try
            {
                _pinner.Remove(id);
                _logger.LogWarning("removed the namespace pins of pod sandbox {Id}, which the store does not know (left by a crash?)", id);
                swept.Add(id);
            }
            catch (Core.HullException e)
            {
                _logger.LogError("cannot remove the orphaned namespace pins of pod sandbox {Id}: {Error}", id, e.Message);
            }
        }

        var sandboxes = Path.Combine(_options.StateDirectory, PodSandboxFiles.DirectoryName);
        if (Directory.Exists(sandboxes))
        {
            foreach (var dir in Directory.EnumerateDirectories(sandboxes))
            {
                var id = Path.GetFileName(dir);
                if (known.Contains(id) || _pods.Contains(id)) continue;
                try
                {
                    if (DirectInfraProcess.ReadPidFile(PodSandboxFiles.InfraPidFile(dir)) is { IsRunning: true } infra)
                    {
                        await DirectInfraProcess.KillAsync(infra, InfraStopTimeout, cancellationToken).ConfigureAwait(false);
                        _logger.LogWarning("killed infra process {Pid} of pod sandbox {Id}, which the store does not know", infra.Pid, id);
                    }
                    foreach (var mountPoint in MountInfo.PointsBelow(dir).OrderByDescending(p => p.Length))
                        Mounts.UnmountAll(mountPoint, detach: true);
                    if (MountInfo.PointsBelow(dir).Count > 0)
                    {
                        _logger.LogError("orphaned sandbox directory {Dir} still has mounts; leaving it", dir);
                        continue;
                    }
                    if (PodSandboxFiles.ReadCgroupMarker(dir) is { } made) madeCgroups[id] = made;
                    Directory.Delete(dir, recursive: true);
                    _logger.LogWarning("removed the directory of pod sandbox {Id}, which the store does not know (left by a crash?)", id);
                    swept.Add(id);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or SyscallException or Core.HullException)
                {
                    _logger.LogError("cannot remove orphaned sandbox directory {Dir}: {Error}", dir, e.Message);
                }
            }
        }

        if (_handlers.Default.CgroupDriver == Runtime.Spec.CgroupDriver.Cgroupfs && CgroupLayout.Detect() is { Mode: not CgroupMode.None } layout)
            foreach (var id in swept.Where(NamespacePinner.IsValidId))
            {
                var cgroup = madeCgroups.GetValueOrDefault(id) ?? $"{DefaultCgroupRoot}/{id}";
                var paths = CgroupPaths.ForCgroupsPath(cgroup, layout);
                if (!paths.Directories.Any(Directory.Exists)) continue;
                try
                {
                    await CgroupTree.RemoveAsync(paths, _options.CgroupRemoveTimeout, cancellationToken).ConfigureAwait(false);
                    _logger.LogWarning("removed the cgroup {Cgroup} of unknown pod sandbox {Id}", cgroup, id);
                }
                catch (Exception e) when (e is Core.HullException or IOException)
                {
                    _logger.LogError("cannot remove the cgroup of orphaned pod sandbox {Id}: {Error}", id, e.Message);
                }
            }
        return swept.ToList();
    }
}
