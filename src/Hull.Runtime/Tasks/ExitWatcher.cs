using System.Collections.Concurrent;

namespace Hull.Runtime.Tasks;

/// <summary>
/// Wakes waiters when conmon writes an exit file (inotify through <see cref="FileSystemWatcher"/>; conmon writes a
/// temporary file and renames it, so the final name appears atomically). Callers still re-check the file on a short
/// period, which covers an inotify queue overflow or a watcher that could not start.
/// </summary>
internal sealed class ExitWatcher : IDisposable
{
    private readonly FileSystemWatcher? _watcher;
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new(StringComparer.Ordinal);

    public ExitWatcher(string directory)
    {
        Directory.CreateDirectory(directory);
        try
        {
            _watcher = new FileSystemWatcher(directory)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size,
                IncludeSubdirectories = false,
            };
            _watcher.Created += (_, e) => Signal(e.Name);
            _watcher.Changed += (_, e) => Signal(e.Name);
            _watcher.Renamed += (_, e) => Signal(e.Name);
            _watcher.Error += (_, _) => SignalAll();
            _watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
        {
            _watcher?.Dispose();
            _watcher = null; // polling alone still works
        }
    }

    /// <summary>Completes when <paramref name="name"/> is created or changed, or after <paramref name="maxWait"/>.</summary>
    public async Task WaitForChangeAsync(string name, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        var signal = _signals.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await signal.Task.WaitAsync(maxWait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private void Signal(string? name)
    {
        if (name is not null && _signals.TryRemove(name, out var signal)) signal.TrySetResult();
    }

    private void SignalAll()
    {
        foreach (var name in _signals.Keys) Signal(name);
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        SignalAll();
    }
}
