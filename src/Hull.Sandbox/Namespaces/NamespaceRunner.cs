using Hull.Core;
using Hull.Linux;
using Hull.Linux.Namespaces;

namespace Hull.Sandbox.Namespaces;

/// <summary>
/// Runs code inside a pinned namespace: a dedicated thread setns()es into it, runs the action and exits, so no
/// pool thread ever changes namespace. Sockets created by the action stay in that network namespace after the
/// thread is gone (port-forward dials the pod this way; tests listen and connect in pod namespaces this way).
/// </summary>
public static class NamespaceRunner
{
    /// <summary>Runs <paramref name="action"/> in the namespace(s) at <paramref name="namespacePath"/>.</summary>
    /// <param name="type">The kind of namespace the path is (one kind).</param>
    /// <exception cref="HullException">NotFound when the path is not (or no longer) a namespace.</exception>
    public static Task<T> RunInAsync<T>(string namespacePath, NamespaceTypes type, Func<T> action)
    {
        string kind = LinuxNamespaces.ProcName(type);
        if (!LinuxNamespaces.IsNamespace(namespacePath))
            throw new HullException(ErrorKind.NotFound, $"{kind} namespace \"{namespacePath}\" does not exist");
        return DedicatedThread.RunAsync($"hull-in-{kind}ns", () =>
        {
            try
            {
                using (var handle = LinuxNamespaces.Open(namespacePath))
                    LinuxNamespaces.Enter(handle, type, namespacePath);
            }
            catch (SyscallException e)
            {
                throw new HullException(e.Errno == Errno.ENOENT ? ErrorKind.NotFound : ErrorKind.Internal,
                    $"cannot enter {kind} namespace \"{namespacePath}\": {e.Message}", e);
            }
            return action();
        });
    }

    public static Task RunInAsync(string namespacePath, NamespaceTypes type, Action action) =>
        RunInAsync(namespacePath, type, () => { action(); return true; });
}
