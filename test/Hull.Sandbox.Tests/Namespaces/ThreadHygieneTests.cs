using System.Diagnostics;
using Hull.Linux.Namespaces;
using Hull.Sandbox.Namespaces;

namespace Hull.Sandbox.Tests.Namespaces;

/// <summary>
/// A thread created by a thread inherits its namespaces: if the thread that entered a pod's namespaces ever made
/// the thread pool (or anything else) start a worker, that worker would run later work, CNI plugins included, in
/// the pod. After namespace work, no thread but the discarded ones may be in the pod's namespaces.
/// </summary>
public sealed class ThreadHygieneTests : IDisposable
{
    private readonly TempDirectory _state = new();
    private readonly NamespacePinner _pinner;

    public ThreadHygieneTests() => _pinner = new NamespacePinner(_state.Path);

    public void Dispose()
    {
        try
        {
            foreach (var id in _pinner.ListSandboxIds()) _pinner.Remove(id);
        }
        finally
        {
            _state.Dispose();
        }
    }

    /// <summary>The threads of this process (tid and name) whose namespace of <paramref name="kind"/> is <paramref name="link"/>.</summary>
    private static List<string> ThreadsIn(string kind, string link)
    {
        var found = new List<string>();
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                if (new FileInfo(Path.Combine(task, "ns", kind)).LinkTarget == link)
                    found.Add($"{Path.GetFileName(task)} {File.ReadAllText(Path.Combine(task, "comm")).Trim()}");
            }
            catch (IOException) { } // the thread exited meanwhile
        }
        return found;
    }

    [RootFact]
    public async Task No_thread_is_left_in_a_pod_namespace_after_pinning_and_running_in_it()
    {
        var pinned = await _pinner.PinAsync(new NamespacePinRequest("hygiene") { Sysctls = new Dictionary<string, string> { ["kernel.shmmni"] = "1234" } });
        var links = new Dictionary<string, string>();
        foreach (var k in NamespacePinner.Kinds)
            links[LinuxNamespaces.ProcName(k)] = await NamespaceRunner.RunInAsync(pinned.PathOf(k)!, k,
                () => new FileInfo(LinuxNamespaces.CurrentThreadNamespacePath(k)).LinkTarget!);

        // Many short visits whose completions land on the thread pool (off xunit's context) while the pool is allowed
        // to add workers on demand: queueing from a thread inside the namespace would create them there.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), io);
        try
        {
            await Task.Run(() => Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
            {
                var kind = NamespacePinner.Kinds[i % 3];
                await NamespaceRunner.RunInAsync(pinned.PathOf(kind)!, kind, () => File.ReadAllText("/proc/sys/kernel/shmmni"));
                Thread.Sleep(5); // keep this worker busy so the next completion needs another
            })));
        }
        finally
        {
            ThreadPool.SetMinThreads(workers, io);
        }

        var stopwatch = Stopwatch.StartNew();
        List<string> left;
        do
        {
            left = links.SelectMany(kv => ThreadsIn(kv.Key, kv.Value)).ToList();
            if (left.Count == 0) break;
            await Task.Delay(20); // the discarded threads may still be exiting
        } while (stopwatch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Empty(left);
        Assert.Equal("4096", File.ReadAllText("/proc/sys/kernel/shmmni").Trim());
    }
}
