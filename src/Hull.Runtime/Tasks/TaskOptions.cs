
namespace Hull.Runtime.Tasks;

/// <summary>How <see cref="TaskManager"/> runs conmon and the OCI runtime, and where it keeps their files.</summary>
public sealed record TaskOptions
{
    /// <summary>Hull's state directory (<c>state</c> in the config, /run/hull): containers/, exits/, attach/, exec/ live here.</summary>
    public required string StateDirectory { get; init; }
    /// <summary>conmon binary, a name looked up on PATH or an absolute path.</summary>
    public string ConmonPath { get; init; } = "conmon";
    /// <summary>OCI runtime binary (the handler's <c>options.BinaryName</c>), a name or an absolute path.</summary>
    public required string RuntimePath { get; init; }
    /// <summary>The runtime's state directory (<c>options.Root</c>, runc --root); null means &lt;state&gt;/runc.</summary>
    public string? RuntimeRoot { get; init; }
    /// <summary>Use the systemd cgroup driver (runc --systemd-cgroup, conmon -s).</summary>
    public bool SystemdCgroup { get; init; }
    /// <summary>How long conmon + <c>runc create</c> may take (CRI-O allows 4 minutes).</summary>
    public TimeSpan CreateTimeout { get; init; } = TimeSpan.FromMinutes(4);
    /// <summary>Time limit of one short runtime command (state, start, kill, delete, update).</summary>
    public TimeSpan RuntimeCommandTimeout { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>conmon's --log-level: error, warn, info, debug or trace.</summary>
    public string ConmonLogLevel { get; init; } = "info";
    /// <summary>conmon logs its own messages to syslog (--syslog), as CRI-O runs it.</summary>
    public bool ConmonSyslog { get; init; } = true;
    /// <summary>conmon rotates a container log file that grows past this many bytes (--log-size-max); negative means never.</summary>
    public long LogSizeMax { get; init; } = -1;
    /// <summary>Output of one ExecSync kept at most (stdout and stderr together, CRI-O's 16 MiB).</summary>
    public int ExecSyncOutputLimit { get; init; } = 16 << 20;
    /// <summary>
    /// hull-run-detached (cmd/hull-run-detached; hulld ships it next to itself), which lets conmon create and start a
    /// container with one run of the runtime; "" makes <see cref="TaskManager.RunAsync"/> run <c>create</c>, then <c>start</c>.
    /// </summary>
    public string RunDetachedHelper { get; init; } = "";
    /// <summary>Extra environment for conmon (and so the runtime it starts).</summary>
    public IReadOnlyDictionary<string, string>? ConmonEnvironment { get; init; }

    internal string ResolvedRuntimeRoot => RuntimeRoot is { Length: > 0 } root ? root : Path.Combine(StateDirectory, "runc");
}
