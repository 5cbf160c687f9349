using System.Text;

namespace Hull.Sandbox.Cni;

/// <summary>The networks configured right now, or why there are none.</summary>
public sealed record CniConfigSnapshot(IReadOnlyList<CniNetworkList> Networks, string? Error)
{
    public bool Ready => Error is null && Networks.Count > 0;
}

/// <summary>
/// Watches a CNI configuration directory without a restart: every call lists the directory and compares names,
/// sizes and modification times with the last load, re-reading the files only when something changed. The first
/// <c>max_conf_num</c> files by name (<c>.conf</c>, <c>.conflist</c>, <c>.json</c>) are the pod networks, as in
/// containerd; one that does not parse makes the node's network not ready, with the file and reason in the message.
/// </summary>
public sealed class CniConfigWatcher
{
    private readonly string _confDir;
    private readonly int _maxConfNum;
    private volatile State? _state;

    private sealed record State(string Fingerprint, CniConfigSnapshot Snapshot);

    /// <param name="maxConfNum">How many files make networks; zero or less means all of them.</param>
    public CniConfigWatcher(string confDir, int maxConfNum)
    {
        _confDir = confDir;
        _maxConfNum = maxConfNum;
    }

    public string ConfDir => _confDir;

    /// <summary>The configuration as it is on disk now (cheap when nothing changed).</summary>
    public CniConfigSnapshot Current()
    {
        var files = ListCandidates();
        string fingerprint = Fingerprint(files);
        var state = _state;
        if (state is not null && state.Fingerprint == fingerprint) return state.Snapshot;
        var snapshot = Load(files);
        _state = new State(fingerprint, snapshot);
        return snapshot;
    }

    /// <summary>The CRI <c>NetworkReady</c> condition for this directory.</summary>
    public CniStatus Status()
    {
        var snapshot = Current();
        if (snapshot.Ready) return new CniStatus(true, "", "");
        // containerd's wording, which operators and kubelet events already know, followed by the detail.
        return new CniStatus(false, CniStatus.NotReadyReason,
            $"Network plugin returns error: cni plugin not initialized: {snapshot.Error ?? $"no network config found in {_confDir}"}");
    }

    private List<FileInfo> ListCandidates()
    {
        try
        {
            var dir = new DirectoryInfo(_confDir);
            if (!dir.Exists) return [];
            return dir.EnumerateFiles()
                .Where(f => CniNetworkList.Extensions.Contains(f.Extension, StringComparer.Ordinal))
                .OrderBy(f => f.Name, StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string Fingerprint(List<FileInfo> files)
    {
        var sb = new StringBuilder();
        foreach (var f in files)
        {
            try
            {
                sb.Append(f.Name).Append('|').Append(f.Length).Append('|').Append(f.LastWriteTimeUtc.Ticks).Append('\n');
            }
            catch (IOException)
            {
                sb.Append(f.Name).Append("|gone\n");
            }
        }
        return sb.ToString();
    }

    private CniConfigSnapshot Load(List<FileInfo> files)
    {
        var networks = new List<CniNetworkList>();
        foreach (var file in files)
        {
            if (_maxConfNum > 0 && networks.Count >= _maxConfNum) break;
            try
            {
                networks.Add(CniNetworkList.Load(file.FullName));
            }
            catch (FileNotFoundException)
            {
                continue; // removed between listing and reading; the next call sees the new listing
            }
            catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
            {
                return new CniConfigSnapshot([], $"CNI config \"{file.FullName}\" is not valid: {e.Message}");
            }
        }
        if (networks.Select(n => n.Name).Distinct(StringComparer.Ordinal).Count() != networks.Count)
            return new CniConfigSnapshot([], $"two CNI configs in {_confDir} name the same network");
        return networks.Count == 0
            ? new CniConfigSnapshot([], $"no network config found in {_confDir}")
            : new CniConfigSnapshot(networks, null);
    }
}
