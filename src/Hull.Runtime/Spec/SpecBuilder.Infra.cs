using Hull.Core;
using Hull.Runtime.Handlers;

namespace Hull.Runtime.Spec;

/// <summary>
/// What a pod's infra process is: the process that holds the pod's PID namespace. Either Hull's own (the catatonit
/// binary bind-mounted into an empty rootfs) or, with <c>pinned_images.sandbox</c>, a pause image's entrypoint + cmd on
/// a snapshot of that image.
/// </summary>
public sealed record InfraSpecRequest
{
    public required string SandboxId { get; init; }
    public required string PodName { get; init; }
    public required string PodNamespace { get; init; }
    public required string PodUid { get; init; }
    public required RuntimeHandler Handler { get; init; }
    /// <summary>The bundle's rootfs on the host (an empty directory, or the pause image's mounted snapshot).</summary>
    public required string RootfsPath { get; init; }
    /// <summary>The pod cgroup ("" when Hull made none).</summary>
    public string CgroupParent { get; init; } = "";
    /// <summary>Pinned pod namespaces the infra process joins ("" for the host's).</summary>
    public string NetNsPath { get; init; } = "";
    public string IpcNsPath { get; init; } = "";
    public string UtsNsPath { get; init; } = "";
    /// <summary>Host path of catatonit, bind-mounted at <see cref="SpecBuilder.InfraBinaryPath"/>; null when <see cref="Image"/> is set.</summary>
    public string? InfraBinary { get; init; }
    /// <summary>The pause image (its reference and config) when one is configured.</summary>
    public (string Reference, ImageConfig Config)? Image { get; init; }
    /// <summary>The pod's runAsUser, which wins over the pause image's user.</summary>
    public long? RunAsUser { get; init; }
    /// <summary>The pod's user namespace (joined by path, with its mappings); null for the host's.</summary>
    public UserNamespace? UserNamespace { get; init; }
}

public sealed partial class SpecBuilder
{
    /// <summary>Where catatonit appears inside the infra process's rootfs.</summary>
    public const string InfraBinaryPath = "/catatonit";

    /// <summary>The infra process is the last to be OOM-killed in its pod (containerd's sandbox container value).</summary>
    private const int InfraOomScoreAdj = -998;

    /// <summary>The infra process's oom_score_adj on this node (clamped where hulld may not lower its own).</summary>
    public int InfraOomScoreAdjustment =>
        Host.RestrictsOomScoreAdj(Options) ? OomScoreAdjPolicy.Restrict(InfraOomScoreAdj, Host.OomScoreAdj) : InfraOomScoreAdj;

    /// <summary>
    /// The infra process's spec: a new PID namespace (which the pod's containers join through /proc/&lt;pid&gt;/ns/pid), the
    /// pod's pinned network, IPC and UTS namespaces, a read-only rootfs, no capabilities, no new privileges.
    /// </summary>
    public async Task<OciSpec> BuildInfraAsync(InfraSpecRequest request, CancellationToken cancellationToken = default)
    {
        int oomScoreAdj = InfraOomScoreAdjustment;
        var process = await InfraProcessAsync(request, cancellationToken).ConfigureAwait(false) with
        {
            Terminal = false,
            NoNewPrivileges = true,
            OomScoreAdj = oomScoreAdj,
            Capabilities = new OciCapabilities(),
        };
        var mounts = new List<OciMount>
        {
            new() { Destination = "/proc", Type = "proc", Source = "proc", Options = ["nosuid", "noexec", "nodev"] },
            new() { Destination = "/dev", Type = "tmpfs", Source = "tmpfs", Options = ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        };
        if (request.InfraBinary is { } binary)
            mounts.Add(new OciMount { Destination = InfraBinaryPath, Type = "bind", Source = binary, Options = ["rbind", "ro", "nosuid", "nodev"] });

        var namespaces = new List<OciNamespace> { new() { Type = OciNamespace.Pid }, new() { Type = OciNamespace.Mount } };
        void Join(string type, string path)
        {
            if (path.Length > 0) namespaces.Add(new OciNamespace { Type = type, Path = path });
        }
        Join(OciNamespace.Network, request.NetNsPath);
        Join(OciNamespace.Ipc, request.IpcNsPath);
        Join(OciNamespace.Uts, request.UtsNsPath);
        if (request.UserNamespace is { } userns) Join(OciNamespace.User, userns.Path ?? "");
        bool systemd = request.Handler.CgroupDriver == CgroupDriver.Systemd;
        return new OciSpec
        {
            Process = process,
            Root = new OciRoot { Path = request.RootfsPath, Readonly = true },
            Mounts = mounts,
            Linux = new OciLinux
            {
                Namespaces = namespaces,
                UidMappings = request.UserNamespace?.UidMappings is { Count: > 0 } uids ? uids : null,
                GidMappings = request.UserNamespace?.GidMappings is { Count: > 0 } gids ? gids : null,
                MaskedPaths = DefaultMaskedPaths,
                ReadonlyPaths = DefaultReadonlyPaths,
                CgroupsPath = request.CgroupParent.Length > 0 || systemd
                    ? CgroupsPath.For(request.Handler.CgroupDriver, request.CgroupParent, request.SandboxId, request.SandboxId)
                    : null,
            },
            Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                [ContainerTypeAnnotation] = "sandbox",
                [SandboxIdAnnotation] = request.SandboxId,
                [SandboxNameAnnotation] = request.PodName,
                [SandboxNamespaceAnnotation] = request.PodNamespace,
                [SandboxUidAnnotation] = request.PodUid,
            },
        };
    }

    /// <summary>
    /// catatonit as nobody (65535), or the pause image's process as containerd runs its sandbox container: entrypoint + cmd,
    /// the image's env (PATH defaulted), working dir, and its user (the pod's runAsUser wins) resolved against the image.
    /// </summary>
    private static async Task<OciProcess> InfraProcessAsync(InfraSpecRequest request, CancellationToken cancellationToken)
    {
        if (request.Image is not { } image)
            return new OciProcess { User = new OciUser { Uid = 65535, Gid = 65535 }, Args = [InfraBinaryPath, "-P"], Env = ["PATH=/"], Cwd = "/" };
        var config = image.Config;
        var args = config.Entrypoint.Concat(config.Cmd).ToList();
        if (args.Count == 0)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"sandbox image \"{image.Reference}\" has neither an entrypoint nor a cmd, so it cannot be the infra process of pod sandbox \"{request.SandboxId}\"");
        var user = await UserResolver.ResolveAsync(request.RootfsPath, image.Reference, new ContainerSecurity { RunAsUser = request.RunAsUser }, config,
            cancellationToken).ConfigureAwait(false);
        var env = config.Env.ToList();
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env.Insert(0, ProcessConfig.DefaultPathEnv);
        return new OciProcess
        {
            User = new OciUser { Uid = user.Uid, Gid = user.Gid, AdditionalGids = user.AdditionalGids.Count > 0 ? user.AdditionalGids : null },
            Args = args,
            Env = env,
            Cwd = string.IsNullOrEmpty(config.WorkingDir) ? "/" : config.WorkingDir,
        };
    }

    /// <summary>
    /// An exec session's process (ExecSync, Exec): the container's own process (user, env, cwd, capabilities, limits) running
    /// <paramref name="command"/>, with a terminal of <paramref name="consoleSize"/> when <paramref name="tty"/>.
    /// </summary>
    public static OciProcess ExecProcess(OciProcess container, IReadOnlyList<string> command, bool tty, OciConsoleSize? consoleSize = null) =>
        container with { Args = command, Terminal = tty, ConsoleSize = tty ? consoleSize : null };
}
