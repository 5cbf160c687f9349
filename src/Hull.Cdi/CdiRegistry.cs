namespace Hull.Cdi;

/// <summary>How the registry finds specs.</summary>
public sealed record CdiRegistryOptions
{
    /// <summary>The reference's default directories: static specs, then generated ones (which win).</summary>
    public static IReadOnlyList<string> DefaultSpecDirectories { get; } = ["/etc/cdi", "/var/run/cdi"];

    /// <summary>Directories in increasing precedence: a device in a later directory replaces one in an earlier directory.</summary>
    public IReadOnlyList<string> SpecDirectories { get; init; } = DefaultSpecDirectories;

    /// <summary>Refresh when the directories change (inotify); off, specs are read only by <see cref="CdiRegistry.Refresh"/>.</summary>
    public bool Watch { get; init; } = true;

    /// <summary>How long to wait after a change for more changes before reading the directories again.</summary>
    public TimeSpan RefreshDelay { get; init; } = TimeSpan.FromMilliseconds(50);
}

/// <summary>
/// The CDI devices of a node: every spec in the configured directories, held in memory and read again when the directories
/// change. Resolving devices only reads the current <see cref="CdiSnapshot"/>, so it takes no lock and does no file I/O
/// beyond the lstat of host device nodes.
/// </summary>
public sealed class CdiRegistry : IDisposable
{
    private readonly CdiRegistryOptions _options;
    private readonly Lock _refreshGate = new();
    private readonly SpecDirectoryWatcher? _watcher;
    private CdiSnapshot _current;
    private long _generation;
    private int _refreshScheduled;
    private volatile bool _disposed;

    public CdiRegistry(CdiRegistryOptions options)
    {
        _options = options;
        // Watch first, then read: nothing written in between is missed.
        if (options.Watch) _watcher = new SpecDirectoryWatcher(options.SpecDirectories, ScheduleRefresh);
        _current = null!;
        Refresh();
    }

    public IReadOnlyList<string> SpecDirectories => _options.SpecDirectories;

    public CdiSnapshot Current => Volatile.Read(ref _current);

    /// <summary>Raised after every refresh (on a thread-pool thread when a change triggered it), for logging what changed and what is invalid.</summary>
    public event Action<CdiSnapshot>? Refreshed;

    /// <summary>See <see cref="CdiSnapshot.Resolve"/>.</summary>
    public CdiInjection Resolve(IReadOnlyList<string> devices) => Current.Resolve(devices);

    /// <summary>Reads the spec directories again now.</summary>
    public CdiSnapshot Refresh()
    {
        CdiSnapshot snapshot;
        lock (_refreshGate)
        {
            snapshot = CdiSnapshot.Load(_options.SpecDirectories, ++_generation);
            Volatile.Write(ref _current, snapshot);
        }
        Refreshed?.Invoke(snapshot);
        return snapshot;
    }

    // A burst of events (a file written in pieces, a driver writing many specs) becomes one refresh after it.
    private void ScheduleRefresh()
    {
        if (_disposed || Interlocked.Exchange(ref _refreshScheduled, 1) == 1) return;
        _ = Task.Run(async () =>
        {
            await Task.Delay(_options.RefreshDelay).ConfigureAwait(false);
            Volatile.Write(ref _refreshScheduled, 0);
            if (!_disposed) Refresh();
        });
    }

    public void Dispose()
    {
        _disposed = true;
        _watcher?.Dispose();
    }
}
