namespace Hull.Sandbox.Namespaces;

/// <summary>
/// Runs work on a brand-new OS thread that ends when the work does. Namespace changes (unshare, setns) apply to
/// the calling thread only, so they are made on such a thread, which is then discarded instead of going back to
/// the pool in a foreign namespace. A managed <see cref="Thread"/> is bound to one OS thread for its whole life,
/// which is what Go's LockOSThread gives containerd.
/// </summary>
/// <remarks>
/// A thread created by a thread inherits its namespaces. So the dedicated thread must not cause any thread to be
/// created once it has switched: it does not complete the task itself (completing a task queues continuations, and
/// queueing can make the thread pool, or a test framework, start a worker right there, which would then live in
/// the pod's namespaces and run anything later, CNI plugins included). It only sets an event; a wait registered by
/// the caller, on the thread pool's wait thread (created in the caller's namespaces), completes the task. The work
/// itself must be short and synchronous for the same reason: no Task.Run, timers or async I/O inside it.
/// </remarks>
internal static class DedicatedThread
{
    public static Task<T> RunAsync<T>(string name, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var signal = new ManualResetEvent(false);
        T result = default!;
        Exception? error = null;
        RegisteredWaitHandle? registration = null;

        // Assigned before the thread starts, and the callback runs only after the thread has set the event.
        registration = ThreadPool.UnsafeRegisterWaitForSingleObject(signal, (_, _) =>
        {
            registration!.Unregister(null);
            signal.Dispose();
            if (error is null) done.SetResult(result);
            else done.SetException(error);
        }, null, Timeout.Infinite, executeOnlyOnce: true);

        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                error = e;
            }
            signal.Set();
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.UnsafeStart();
        return done.Task;
    }
}
