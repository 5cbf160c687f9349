using Hull.Core;

namespace Hull.Sandbox;

/// <summary>
/// Pod names in use: a name (<see cref="Controller.PodIdentity.ReservationKey"/>) is reserved for one sandbox id from
/// the moment RunPodSandbox starts until the sandbox is removed, or until the attempt fails (containerd's registrar).
/// </summary>
public sealed class SandboxNameRegistrar
{
    private readonly Dictionary<string, string> _nameToId = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Reserves <paramref name="name"/> for <paramref name="id"/>; reserving it again for the same id is a no-op.</summary>
    /// <exception cref="HullException">AlreadyExists when another sandbox holds the name.</exception>
    public void Reserve(string name, string id)
    {
        lock (_lock)
        {
            if (_nameToId.TryGetValue(name, out var holder))
            {
                if (holder == id) return;
                throw new HullException(ErrorKind.AlreadyExists,
                    $"failed to reserve sandbox name \"{name}\": name \"{name}\" is reserved for \"{holder}\"");
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
