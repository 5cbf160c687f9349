namespace Hull.Cdi;

/// <summary>
/// Tells when anything in the spec directories may have changed (inotify, through FileSystemWatcher). A directory that
/// does not exist yet (/var/run/cdi before a driver writes its first spec) is watched for through its nearest existing
/// ancestor, and a directory that is removed or replaced is watched for again, so specs are picked up without a restart.
/// </summary>
internal sealed class SpecDirectoryWatcher : IDisposable
{
    private readonly IReadOnlyList<string> _directories;
    private readonly Action _changed;
    private readonly Lock _gate = new();
    private List<FileSystemWatcher> _watchers = [];
    private bool _disposed;

    public SpecDirectoryWatcher(IReadOnlyList<string> directories, Action changed)
    {
        _directories = directories;
        _changed = changed;
        Arm();
    }

    /// <summary>Watches each directory that exists and, for each, the place where it would appear or disappear.</summary>
    private void Arm()
    {
        var watchers = new List<FileSystemWatcher>();
        var watched = new HashSet<(string, string)>();
        foreach (var directory in _directories.Select(Path.GetFullPath))
        {
            if (Directory.Exists(directory) && watched.Add((directory, "*")))
                watchers.Add(Watch(directory, "*", NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size, rearm: false));
            // The nearest existing ancestor, watched for the next path component (the directory itself, or the first
            // missing directory on the way to it).
            string child = directory;
            string? parent = Path.GetDirectoryName(child);
            while (parent is not null && !Directory.Exists(parent))
            {
                child = parent;
                parent = Path.GetDirectoryName(child);
            }
            if (parent is not null && watched.Add((parent, Path.GetFileName(child))))
                watchers.Add(Watch(parent, Path.GetFileName(child), NotifyFilters.DirectoryName, rearm: true));
        }

        List<FileSystemWatcher> old;
        lock (_gate)
        {
            if (_disposed)
            {
                foreach (var w in watchers) w.Dispose();
                return;
            }
            old = _watchers;
            _watchers = watchers;
        }
        foreach (var w in old) w.Dispose();
    }

    private FileSystemWatcher Watch(string path, string filter, NotifyFilters notify, bool rearm)
    {
        var watcher = new FileSystemWatcher(path, filter) { NotifyFilter = notify, IncludeSubdirectories = false };
        FileSystemEventHandler onEvent = rearm ? (_, _) => Restructure() : (_, e) => OnFileEvent(e.FullPath);
        watcher.Created += onEvent;
        watcher.Changed += onEvent;
        watcher.Deleted += onEvent;
        watcher.Renamed += (_, e) =>
        {
            if (rearm) Restructure();
            else
            {
                OnFileEvent(e.OldFullPath);
                OnFileEvent(e.FullPath);
            }
        };
        // An overflowed event queue or a watched directory that went away: start over and read everything again.
        watcher.Error += (_, _) => Restructure();
        watcher.EnableRaisingEvents = true;
        return watcher;
    }

    // Temporary files a vendor writes before renaming them into place do not matter. (A spec directory inside another
    // is watched for through its own ancestor watcher.)
    private void OnFileEvent(string path)
    {
        if (CdiSnapshot.IsSpecFile(path)) _changed();
    }

    private void Restructure()
    {
        try
        {
            Arm();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // The tree changed under us again; the event that comes with that change re-arms.
        }
        _changed();
    }

    public void Dispose()
    {
        List<FileSystemWatcher> watchers;
        lock (_gate)
        {
            _disposed = true;
            watchers = _watchers;
            _watchers = [];
        }
        foreach (var w in watchers) w.Dispose();
    }
}
