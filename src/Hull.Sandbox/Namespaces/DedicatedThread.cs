namespace Hull.Sandbox.Namespaces;

/// <summary>
/// Runs work on a brand-new OS thread that ends when the work does. Namespace changes (unshare, setns) apply to
/// the calling thread only, so they are made on such a thread, which is then discarded instead of going back to
/// the pool in a foreign namespace. A managed <see cref="Thread"/> is bound to one OS thread for its whole life,
/// which is what Go's LockOSThread gives containerd.
/// </summary>
internal static class DedicatedThread
{
    public static Task<T> RunAsync<T>(string name, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return done.Task;
    }
}
