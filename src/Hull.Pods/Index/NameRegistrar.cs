using Hull.Core;

namespace Hull.Pods.Index;

/// <summary>
/// Names in use (containerd's registrar): a pod's or container's name is reserved for one id from the moment its
/// creation starts until it is removed or the creation fails, so two RunPodSandbox (or CreateContainer) calls for the
/// same name never both succeed.
/// </summary>
public sealed class NameRegistrar(string kind)
{
    private readonly Dictionary<string, string> _nameToId = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Reserves <paramref name="name"/> for <paramref name="id"/>; reserving it again for the same id is a no-op.</summary>
    /// <exception cref="HullException">AlreadyExists naming the id that holds the name.</exception>
    public void Reserve(string name, string id)
    {
        lock (_lock)
        {
            if (_nameToId.TryGetValue(name, out var holder))
            {
                if (holder == id) return;
                throw new HullException(ErrorKind.AlreadyExists,
                    $"failed to reserve {kind} name \"{name}\": name \"{name}\" is reserved for \"{holder}\"");
            }
            _nameToId[name] = id;
        }
    }

    /// <summary>Releases the name if <paramref name="id"/> holds it.</summary>
    public void Release(string name, string id)
    {
        lock (_lock)
        {
            if (_nameToId.TryGetValue(name, out var holder) && holder == id) _nameToId.Remove(name);
        }
    }

    public string? HolderOf(string name)
    {
        lock (_lock) return _nameToId.GetValueOrDefault(name);
    }
}
