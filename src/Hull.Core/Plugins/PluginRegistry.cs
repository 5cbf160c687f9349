namespace Hull.Core.Plugins;

public enum PluginStatus { Ok, Error, Skipped }

/// <summary>One plugin as introspection reports it (containerd's `ctr plugins ls` model).</summary>
public sealed record PluginInfo(string Type, string Id, PluginStatus Status, string Error,
    IReadOnlyList<string> Requires, IReadOnlyDictionary<string, string> Exports)
{
    public string Name => $"{Type}.{Id}";
}

/// <summary>The plugins of this daemon and how their initialisation went.</summary>
public sealed class PluginRegistry
{
    private readonly List<PluginInfo> _plugins = new();

    public void Add(PluginInfo plugin)
    {
        lock (_plugins) _plugins.Add(plugin);
    }

    public void Ok(string type, string id, IReadOnlyDictionary<string, string>? exports = null, params string[] requires) =>
        Add(new PluginInfo(type, id, PluginStatus.Ok, "", requires, exports ?? new Dictionary<string, string>()));

    public IReadOnlyList<PluginInfo> Snapshot()
    {
        lock (_plugins) return _plugins.ToArray();
    }
}
