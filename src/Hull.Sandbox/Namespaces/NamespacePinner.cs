using Hull.Core;
using Hull.Runtime.Security;
using Hull.Linux;
using Hull.Linux.Namespaces;

namespace Hull.Sandbox.Namespaces;

/// <summary>What to create for one pod sandbox: which namespaces, and what to set in them before anyone joins.</summary>
public sealed record NamespacePinRequest(string SandboxId)
{
    public NamespaceTypes Namespaces { get; init; } = NamespaceTypes.Network | NamespaceTypes.Ipc | NamespaceTypes.Uts;
    /// <summary>Set in the new UTS namespace (requires <see cref="NamespaceTypes.Uts"/>); null keeps the node's.</summary>
    public string? Hostname { get; init; }
    /// <summary>Namespaced sysctls (<c>net.*</c>, IPC's <c>kernel.shm*</c>/<c>kernel.msg*</c>/<c>kernel.sem</c>/<c>fs.mqueue.*</c>), dot or slash form.</summary>
    public IReadOnlyDictionary<string, string> Sysctls { get; init; } = new Dictionary<string, string>();
    /// <summary>
    /// A user namespace for the pod with these mappings, pinned too; the other namespaces are then created inside it (owned
    /// by it), so that its root may mount sysfs and mqueue and set the pod's sysctls. Null: they belong to the host's.
    /// </summary>
    public UserNamespaceMappings? UserNamespace { get; init; }
}

/// <summary>A pod user namespace's uid and gid mappings.</summary>
public sealed record UserNamespaceMappings(IReadOnlyList<IdMapping> Uids, IReadOnlyList<IdMapping> Gids);

/// <summary>The bind mounts that keep a pod's namespaces alive; a path is null for a namespace not pinned.</summary>
public sealed record PinnedNamespaces(string SandboxId, string? NetworkPath, string? IpcPath, string? UtsPath, string? UserPath = null)
{
    public string? PathOf(NamespaceTypes type) => type switch
    {
        NamespaceTypes.Network => NetworkPath,
        NamespaceTypes.Ipc => IpcPath,
        NamespaceTypes.Uts => UtsPath,
        NamespaceTypes.User => UserPath,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "exactly one namespace kind"),
    };
}

/// <summary>
/// Creates a pod's network, IPC and UTS namespaces (and, for a pod with its own, its user namespace) and pins each by
/// bind-mounting it onto an empty file <c>&lt;state&gt;/ns/{net,ipc,uts,user}/&lt;sandbox id&gt;</c>, the way containerd and
/// CRI-O's pinns do, so they outlive every process in them (and a restart of hulld). Removing is idempotent. Callers
/// serialize calls per sandbox.
/// </summary>
public sealed class NamespacePinner
{
    /// <summary>The kinds a pod sandbox shares between its containers, in the order they are created and listed.</summary>
    public static readonly IReadOnlyList<NamespaceTypes> Kinds = [NamespaceTypes.Network, NamespaceTypes.Ipc, NamespaceTypes.Uts];

    /// <summary>Every kind that may be pinned: <see cref="Kinds"/> and the pod's user namespace.</summary>
    public static readonly IReadOnlyList<NamespaceTypes> PinnedKinds = [.. Kinds, NamespaceTypes.User];

    private readonly Lock _sharedLock = new();
    private bool _shared;

    /// <param name="stateDirectory">The daemon's <c>state</c> directory (default <c>/run/hull</c>); pins go under its <c>ns/</c>.</param>
    public NamespacePinner(string stateDirectory)
    {
        NamespaceDirectory = Path.Combine(stateDirectory, "ns");
    }

    /// <summary><c>&lt;state&gt;/ns</c>, made a shared mount point on first use.</summary>
    public string NamespaceDirectory { get; }

    public string PathOf(string sandboxId, NamespaceTypes type)
    {
        ValidateSandboxId(sandboxId);
        return Path.Combine(NamespaceDirectory, LinuxNamespaces.ProcName(type), sandboxId);
    }

    /// <summary>Creates and pins the requested namespaces on a dedicated thread that is discarded afterwards.</summary>
    /// <exception cref="HullException">AlreadyExists when this sandbox already has a live pin; InvalidArgument for a bad
    /// id or sysctl; Internal when the kernel refuses. Nothing is left behind on failure.</exception>
    public async Task<PinnedNamespaces> PinAsync(NamespacePinRequest request, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string id = request.SandboxId;
        ValidateSandboxId(id);
        var kinds = Kinds.Where(k => request.Namespaces.HasFlag(k)).ToList();
        if (request.UserNamespace is not null) kinds.Add(NamespaceTypes.User);
        if (kinds.Count == 0 || (request.Namespaces & ~(NamespaceTypes.Network | NamespaceTypes.Ipc | NamespaceTypes.Uts)) != 0)
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{id}\": cannot pin namespaces {request.Namespaces}");
        if (request.Hostname is not null && !request.Namespaces.HasFlag(NamespaceTypes.Uts))
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{id}\": a hostname needs a private UTS namespace");
        if (request.Hostname is { } hostname && (hostname.Length is 0 or > 64 || hostname.Any(c => c is '\0' or > '\x7f')))
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{id}\": hostname \"{hostname}\" is not 1 to 64 ASCII characters");
        var sysctls = ValidSysctls(id, request);

        EnsureSharedMountPoint();
        var targets = new List<(NamespaceTypes Kind, string Path)>();
        try
        {
            foreach (var kind in kinds)
            {
                string path = PathOf(id, kind);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                if (LinuxNamespaces.IsNamespace(path))
                    throw new HullException(ErrorKind.AlreadyExists,
                        $"pod sandbox \"{id}\": {LinuxNamespaces.ProcName(kind)} namespace is already pinned at \"{path}\"");
                // An empty file left by a crash between create and mount is simply reused.
                using (new FileStream(path, new FileStreamOptions
                       { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead }))
                { }
                targets.Add((kind, path));
            }

            if (request.UserNamespace is { } userns)
            {
                // The namespaces are made by a child (a multithreaded process cannot make a user namespace), created with
                // the user namespace so that it owns them; they are pinned while it lives, then set up from a thread.
                using (var holder = NamespaceHolder.Start(userns.Uids, userns.Gids, request.Namespaces))
                    foreach (var (kind, path) in targets) LinuxNamespaces.BindMount(holder.PathOf(kind), path);
                if (request.Hostname is not null || sysctls.Count > 0)
                    await DedicatedThread.RunAsync($"hull-pin-{id}", () =>
                    {
                        foreach (var (kind, path) in targets.Where(t => t.Kind != NamespaceTypes.User))
                        {
                            using var handle = LinuxNamespaces.Open(path);
                            LinuxNamespaces.Enter(handle, kind, path);
                        }
                        Configure(id, request.Hostname, sysctls);
                        return true;
                    }).ConfigureAwait(false);
            }
            else
            {
                await DedicatedThread.RunAsync($"hull-pin-{id}", () =>
                {
                    LinuxNamespaces.Unshare(request.Namespaces);
                    Configure(id, request.Hostname, sysctls);
                    foreach (var (kind, path) in targets)
                        LinuxNamespaces.BindMount(LinuxNamespaces.CurrentThreadNamespacePath(kind), path);
                    return true;
                }).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            foreach (var (_, path) in targets) Unpin(id, path, suppress: true);
            if (e is HullException) throw;
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{id}\": cannot create namespaces: {e.Message}", e);
        }

        string? pathOf(NamespaceTypes k) => targets.Where(t => t.Kind == k).Select(t => t.Path).FirstOrDefault();
        return new PinnedNamespaces(id, pathOf(NamespaceTypes.Network), pathOf(NamespaceTypes.Ipc), pathOf(NamespaceTypes.Uts),
            pathOf(NamespaceTypes.User));
    }

    /// <summary>Sets the hostname and sysctls in the calling thread's namespaces (a dedicated thread that is in the pod's).</summary>
    private static void Configure(string id, string? hostname, List<(string Path, string Name, string Value)> sysctls)
    {
        if (hostname is not null) LinuxNamespaces.SetHostname(hostname);
        foreach (var (procPath, name, value) in sysctls)
        {
            try
            {
                WriteSysctl(procPath, value);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox \"{id}\": cannot set sysctl {name}={value}: {e.Message}", e);
            }
        }
    }

    /// <summary>Unmounts (MNT_DETACH) and deletes every pin of the sandbox. Idempotent: a missing pin is no error.</summary>
    public void Remove(string sandboxId)
    {
        ValidateSandboxId(sandboxId);
        foreach (var kind in PinnedKinds) Unpin(sandboxId, PathOf(sandboxId, kind), suppress: false);
    }

    /// <summary>Whether the sandbox's pin of <paramref name="type"/> is still a namespace (statfs says nsfs).</summary>
    public bool IsPinned(string sandboxId, NamespaceTypes type) => LinuxNamespaces.IsNamespace(PathOf(sandboxId, type));

    /// <summary>The pins on disk (live or not), for reconciling with the metadata store after a restart.</summary>
    public IReadOnlyList<string> ListSandboxIds()
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var kind in PinnedKinds)
        {
            var dir = Path.Combine(NamespaceDirectory, LinuxNamespaces.ProcName(kind));
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.EnumerateFiles(dir)) ids.Add(Path.GetFileName(file));
        }
        return ids.ToList();
    }

    /// <summary>
    /// At daemon shutdown: when no sandbox has a live pin any more, undoes the shared bind mount of
    /// <see cref="NamespaceDirectory"/> onto itself (it is made again by the next <see cref="PinAsync"/>), so a stopped
    /// daemon with no pods leaves no mount behind. Returns whether it was released.
    /// </summary>
    public bool ReleaseIfUnused()
    {
        lock (_sharedLock)
        {
            foreach (var id in ListSandboxIds())
                if (PinnedKinds.Any(k => IsPinned(id, k))) return false;
            if (Directory.Exists(NamespaceDirectory)) Mounts.UnmountAll(NamespaceDirectory, detach: true);
            _shared = false;
            return true;
        }
    }

    private static void Unpin(string sandboxId, string path, bool suppress)
    {
        try
        {
            Mounts.UnmountAll(path, detach: true);
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // never pinned, or removed already
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (suppress) return;
            throw new HullException(ErrorKind.Internal, $"pod sandbox \"{sandboxId}\": cannot remove namespace pin \"{path}\": {e.Message}", e);
        }
    }

    private void EnsureSharedMountPoint()
    {
        lock (_sharedLock)
        {
            if (_shared) return;
            Directory.CreateDirectory(NamespaceDirectory);
            try
            {
                LinuxNamespaces.MakeSharedMountPoint(NamespaceDirectory);
            }
            catch (SyscallException e)
            {
                throw new HullException(ErrorKind.FailedPrecondition, $"cannot make \"{NamespaceDirectory}\" a shared mount point for namespace pins: {e.Message}", e);
            }
            _shared = true;
        }
    }

    internal static void ValidateSandboxId(string sandboxId)
    {
        if (!IsValidId(sandboxId))
            throw new HullException(ErrorKind.InvalidArgument, $"pod sandbox id \"{sandboxId}\" is not valid: letters, digits, '_', '.', '-', starting with a letter or digit");
    }

    /// <summary>The rule CNI applies to container ids (libcni's ValidateContainerID), which also keeps ids safe as file names.</summary>
    internal static bool IsValidId(string id) =>
        id.Length is > 0 and <= 255 && char.IsAsciiLetterOrDigit(id[0]) &&
        id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>The request's sysctls checked by the same rules the container spec uses, with their /proc/sys paths.</summary>
    private static List<(string Path, string Name, string Value)> ValidSysctls(string id, NamespacePinRequest request)
    {
        try
        {
            return Sysctls.Validate(request.Sysctls,
                    hostNetwork: !request.Namespaces.HasFlag(NamespaceTypes.Network),
                    hostIpc: !request.Namespaces.HasFlag(NamespaceTypes.Ipc),
                    hostUts: !request.Namespaces.HasFlag(NamespaceTypes.Uts))
                .Select(kv => (Sysctls.ProcPath(kv.Key), kv.Key, kv.Value)).ToList();
        }
        catch (HullException e)
        {
            throw new HullException(e.Kind, $"pod sandbox \"{id}\": {e.Message}", e);
        }
    }

    /// <summary>Writes on the calling thread, so the value lands in that thread's namespaces.</summary>
    private static void WriteSysctl(string procPath, string value)
    {
        using var stream = new FileStream(procPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(value));
    }
}
