namespace Hull.Pods.Tests.Fakes;

/// <summary>
/// Where a fake host effect fails or waits: a test names a step ("sandbox.create", "task.create", ...) and the fake
/// throws there, or blocks there until the test lets it go.
/// </summary>
public sealed class Faults
{
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskCompletionSource> _gates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskCompletionSource> _reached = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public void Fail(string step)
    {
        lock (_lock) _failing.Add(step);
    }

    public void Clear(string step)
    {
        lock (_lock) _failing.Remove(step);
    }

    /// <summary>Makes <paramref name="step"/> wait until <see cref="Release"/>; <see cref="ReachedAsync"/> completes when something waits there.</summary>
    public void Block(string step)
    {
        lock (_lock)
        {
            _gates[step] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _reached[step] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void Release(string step)
    {
        lock (_lock) _gates[step].TrySetResult();
    }

    public Task ReachedAsync(string step)
    {
        lock (_lock) return _reached[step].Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Called by the fakes at each step.</summary>
    public async Task StepAsync(string step)
    {
        Task? gate = null;
        lock (_lock)
        {
            if (_failing.Contains(step)) throw new Core.HullException(Core.ErrorKind.Internal, $"injected failure at {step}");
            if (_gates.TryGetValue(step, out var g))
            {
                _reached[step].TrySetResult();
                gate = g.Task;
            }
        }
        if (gate is not null) await gate.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    public void Step(string step) => StepAsync(step).GetAwaiter().GetResult();
}
