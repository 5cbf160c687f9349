using System.Diagnostics;
using System.Globalization;
using System.Text;
using Hull.Grpc.Server;

namespace Hulld.Telemetry;

/// <summary>
/// The <c>/debug/</c> pages of the metrics listener (never of the CRI socket): what an operator chasing a stuck kubelet
/// call needs — the calls in flight and their age, the open connections, GC and thread-pool state, and every managed
/// thread's stack. Plain text, newest information only, nothing cached.
/// </summary>
internal sealed class DebugPages(GrpcServer server, ThreadStacks stacks)
{
    public static readonly IReadOnlyList<(string Path, string What)> Index =
    [
        ("/debug/calls", "gRPC calls in flight (oldest first, with their age) and the open connections"),
        ("/debug/runtime", "GC, thread pool and process state"),
        ("/debug/stacks", "the managed stack of every thread (takes a few seconds: hulld writes and reads a minidump of itself)"),
    ];

    public string IndexPage()
    {
        var text = new StringBuilder("hulld debug pages\n\n");
        foreach (var (path, what) in Index) text.Append(CultureInfo.InvariantCulture, $"{path,-16} {what}\n");
        return text.ToString();
    }

    public string CallsPage()
    {
        var now = DateTimeOffset.UtcNow;
        var calls = server.InFlightCalls();
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"calls in flight: {calls.Count}\n");
        foreach (var call in calls)
            text.Append(CultureInfo.InvariantCulture, $"  {Age(now - call.StartedAt),10}  {call.Path}  from {call.Peer}, stream {call.StreamId}, since {call.StartedAt:O}\n");
        var connections = server.Connections.OrderBy(c => c.OpenedAt).ToArray();
        text.Append(CultureInfo.InvariantCulture, $"\nconnections open: {connections.Length}\n");
        foreach (var connection in connections)
            text.Append(CultureInfo.InvariantCulture,
                $"  {Age(now - connection.OpenedAt),10}  {connection.Peer}, {connection.ActiveStreams} stream(s) open, since {connection.OpenedAt:O}\n");
        return text.ToString();
    }

    public static string RuntimePage()
    {
        var gc = GC.GetGCMemoryInfo();
        using var process = Process.GetCurrentProcess();
        ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
        ThreadPool.GetMaxThreads(out int maxWorkers, out int maxIo);
        ThreadPool.GetAvailableThreads(out int freeWorkers, out int freeIo);
        var text = new StringBuilder();
        void Line(string name, object value) => text.Append(CultureInfo.InvariantCulture, $"{name,-34} {value}\n");
        Line("process id", Environment.ProcessId);
        Line("uptime", Age(DateTime.Now - process.StartTime));
        Line("resident memory bytes", process.WorkingSet64);
        Line("threads (os)", process.Threads.Count);
        text.Append("\nGC\n");
        Line("  mode", $"{(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, latency {System.Runtime.GCSettings.LatencyMode}");
        Line("  heap bytes", GC.GetTotalMemory(false));
        Line("  heap size after last GC", gc.HeapSizeBytes);
        Line("  fragmented bytes", gc.FragmentedBytes);
        Line("  committed bytes", gc.TotalCommittedBytes);
        Line("  allocated bytes (total)", GC.GetTotalAllocatedBytes());
        Line("  collections gen0/gen1/gen2", $"{GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}");
        Line("  pause time total", GC.GetTotalPauseDuration());
        Line("  pause time %", gc.PauseTimePercentage.ToString("0.###", CultureInfo.InvariantCulture));
        text.Append("\nthread pool\n");
        Line("  threads", ThreadPool.ThreadCount);
        Line("  work items queued", ThreadPool.PendingWorkItemCount);
        Line("  work items completed", ThreadPool.CompletedWorkItemCount);
        Line("  worker threads min/max/free", $"{minWorkers}/{maxWorkers}/{freeWorkers}");
        Line("  I/O threads min/max/free", $"{minIo}/{maxIo}/{freeIo}");
        Line("  lock contentions", Monitor.LockContentionCount);
        Line("  timers", Timer.ActiveCount);
        return text.ToString();
    }

    /// <summary>The thread stacks, or null while another request is taking them.</summary>
    public Task<string?> StacksPageAsync(CancellationToken cancellationToken) => stacks.CaptureAsync(cancellationToken);

    private static string Age(TimeSpan age) => age.TotalSeconds < 60
        ? age.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + "s"
        : age.ToString(@"d\.hh\:mm\:ss", CultureInfo.InvariantCulture);
}
