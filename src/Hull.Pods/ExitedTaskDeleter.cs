using System.Threading.Channels;

namespace Hull.Pods;

/// <summary>
/// Runs the deletes of exited containers' tasks in the background, one at a time (queued by
/// <see cref="ContainerManager"/> at each exit, and for the containers it finds exited at a restart). One at a time
/// because a burst of exits, as when a node drains, must not take the CPUs from the stops and starts that calls wait for. A delete still queued when RemoveContainer comes is
/// done by RemoveContainer; the queued one then finds the container removed.
/// </summary>
internal sealed class ExitedTaskDeleter
{
    private readonly Channel<Func<Task>> _queue = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });

    /// <param name="stopping">Ends the worker; what is still queued is left to RemoveContainer.</param>
    public ExitedTaskDeleter(CancellationToken stopping) => _ = Task.Run(() => RunAsync(stopping));

    /// <param name="delete">Handles its own errors.</param>
    public void Enqueue(Func<Task> delete) => _queue.Writer.TryWrite(delete);

    private async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var delete in _queue.Reader.ReadAllAsync(stopping).ConfigureAwait(false))
                await delete().ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
    }
}
