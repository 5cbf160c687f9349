using System.Collections.Concurrent;
using Hull.Core;

namespace Hull.Sandbox.Controller;

/// <summary>What every sandboxer keeps about one of its pods; a sandboxer adds its own (a VM, its tasks).</summary>
internal abstract class SandboxEntry(PodSandboxSpec spec, SandboxInstance instance)
{
    public PodSandboxSpec Spec { get; } = spec;
    public volatile SandboxInstance Instance = instance;
    public DateTimeOffset? ExitedAt;
    public readonly TaskCompletionSource<SandboxExit> Exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Held by whatever changes the pod: start, stop, shutdown.</summary>
    public readonly SemaphoreSlim Lock = new(1, 1);
}

/// <summary>
/// A sandboxer's pods by id. Finding, adding, stopping and removing a pod work alike for every sandboxer; what tearing
/// one down means is the sandboxer's (<c>tearDown</c>), run under the pod's lock.
/// </summary>
internal sealed class SandboxTable<TPod> where TPod : SandboxEntry
{
    private readonly ConcurrentDictionary<string, TPod> _pods = new(StringComparer.Ordinal);

    public ICollection<TPod> Values => _pods.Values;

    public bool Contains(string id) => _pods.ContainsKey(id);

    public TPod Get(string id) =>
        _pods.TryGetValue(id, out var pod) ? pod : throw new HullException(ErrorKind.NotFound, $"pod sandbox \"{id}\" not found");

    /// <summary>Adds a pod being created; an id in use is refused.</summary>
    public void Add(TPod pod)
    {
        if (!_pods.TryAdd(pod.Spec.Id, pod)) throw new HullException(ErrorKind.AlreadyExists, $"pod sandbox \"{pod.Spec.Id}\" already exists");
    }

    /// <summary>Puts a pod found on disk at start.</summary>
    public void Recovered(TPod pod) => _pods[pod.Spec.Id] = pod;

    public void Remove(string id) => _pods.TryRemove(id, out _);

    /// <summary>Runs <paramref name="action"/> under the pod's lock.</summary>
    public static async Task<T> LockedAsync<T>(TPod pod, Func<Task<T>> action, CancellationToken cancellationToken)
    {
        await pod.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            pod.Lock.Release();
        }
    }

    /// <summary>Runs <paramref name="action"/> under the pod's lock.</summary>
    public static async Task LockedAsync(TPod pod, Func<Task> action, CancellationToken cancellationToken)
    {
        await pod.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await action().ConfigureAwait(false);
        }
        finally
        {
            pod.Lock.Release();
        }
    }

    /// <summary>Stops the pod (it stays known); an unknown id is NotFound.</summary>
    public Task StopAsync(string id, Func<TPod, Task> tearDown, CancellationToken cancellationToken)
    {
        var pod = Get(id);
        return LockedAsync(pod, () => tearDown(pod), cancellationToken);
    }

    /// <summary>Tears the pod down for good and forgets it; an unknown id is already gone.</summary>
    public async Task ShutdownAsync(string id, Func<TPod, Task> tearDown, CancellationToken cancellationToken)
    {
        if (!_pods.TryGetValue(id, out var pod)) return;
        await LockedAsync(pod, async () =>
        {
            await tearDown(pod).ConfigureAwait(false);
            _pods.TryRemove(id, out _);
        }, cancellationToken).ConfigureAwait(false);
    }
}
