using Hull.Core;
using Hull.Core.Processes;
using Hull.Runtime.Spec;

namespace Hull.Runtime.Handlers;

/// <summary>What a handler's sandboxer can do on this node, as CRI Status reports it per handler.</summary>
public sealed record RuntimeHandlerFeatures(bool UserNamespaces = false, bool RecursiveReadOnlyMounts = false);

/// <summary>
/// One runtime handler (containerd's <c>runtimes.&lt;name&gt;</c>), resolved once from config at start: every value is
/// final here (a handler's own setting, else the global one), so Status, RunPodSandbox, CreateContainer and the spec
/// builder all read the same answer and nothing else resolves handler settings.
/// </summary>
public sealed record RuntimeHandler
{
    public required string Name { get; init; }
    /// <summary>The sandboxer that serves this handler's pods (<c>podsandbox</c>, <c>microvm</c>).</summary>
    public required string Sandboxer { get; init; }
    /// <summary>containerd's <c>runtime_type</c>, kept for status and migration; Hull runs every handler with conmon + its OCI runtime.</summary>
    public string RuntimeType { get; init; } = "";
    /// <summary>The OCI runtime binary as configured (a name looked up on PATH, or a path): see <see cref="RuntimeBinaryPath"/>.</summary>
    public required string RuntimeBinary { get; init; }
    /// <summary>The OCI runtime's state directory (<c>--root</c>); empty means Hull's default under its state directory.</summary>
    public string RuntimeRoot { get; init; } = "";
    public CgroupDriver CgroupDriver { get; init; } = CgroupDriver.Cgroupfs;
    public required string CniConfDir { get; init; }
    /// <summary>How many CNI configs a pod is attached to; zero or less means all.</summary>
    public int CniMaxConfNum { get; init; } = 1;
    /// <summary>The snapshotter that holds this handler's container filesystems.</summary>
    public required string Snapshotter { get; init; }
    /// <summary>Pod annotations (patterns, <see cref="Spec.AnnotationPatterns"/>) passed to its containers' OCI specs.</summary>
    public IReadOnlyList<string> PodAnnotations { get; init; } = [];
    /// <summary>Privileged containers do not get every host device (containerd's <c>privileged_without_host_devices</c>).</summary>
    public bool PrivilegedWithoutHostDevices { get; init; }
    /// <summary>With <see cref="PrivilegedWithoutHostDevices"/>: still allow every device in the device cgroup.</summary>
    public bool PrivilegedWithoutHostDevicesAllDevicesAllowed { get; init; }
    /// <summary>What the handler's sandboxer reports it can do here (probed at start).</summary>
    public RuntimeHandlerFeatures Features { get; init; } = new();

    /// <summary>The OCI runtime binary's absolute path, or null when it is not installed (Status reports it; create fails naming it).</summary>
    public string? RuntimeBinaryPath => Executables.TryResolve(RuntimeBinary);
}

/// <summary>The configured runtime handlers and which one an empty name means.</summary>
public sealed class RuntimeHandlers
{
    private readonly Dictionary<string, RuntimeHandler> _byName;

    public RuntimeHandlers(IEnumerable<RuntimeHandler> handlers, string defaultName)
    {
        _byName = handlers.ToDictionary(h => h.Name, StringComparer.Ordinal);
        if (!_byName.TryGetValue(defaultName, out var fallback))
            throw new HullException(ErrorKind.InvalidArgument,
                $"default_runtime_name \"{defaultName}\" names no configured runtime (configured: {string.Join(", ", _byName.Keys.Order(StringComparer.Ordinal))})");
        Default = fallback;
        All = _byName.Values.OrderBy(h => h.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The handler an empty <c>runtime_handler</c> means.</summary>
    public RuntimeHandler Default { get; }

    /// <summary>Every handler, by name.</summary>
    public IReadOnlyList<RuntimeHandler> All { get; }

    /// <summary>The handler a runtime_handler names ("" is the default one), or null when none has that name.</summary>
    public RuntimeHandler? Find(string name) => name.Length == 0 ? Default : _byName.GetValueOrDefault(name);

    /// <summary>The handler a runtime_handler names ("" is the default one).</summary>
    /// <exception cref="HullException">InvalidArgument naming the configured handlers.</exception>
    public RuntimeHandler Resolve(string name) => Find(name) ?? throw new HullException(ErrorKind.InvalidArgument,
        $"no runtime for \"{name}\" is configured (known runtime handlers: {string.Join(", ", All.Select(h => $"\"{h.Name}\""))})");

    /// <summary>The same handlers with <paramref name="features"/> filled in (what each sandboxer reports for it).</summary>
    public RuntimeHandlers WithFeatures(Func<RuntimeHandler, RuntimeHandlerFeatures> features) =>
        new(All.Select(h => h with { Features = features(h) }), Default.Name);
}
