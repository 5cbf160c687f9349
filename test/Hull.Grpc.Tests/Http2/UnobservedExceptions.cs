using System.Collections.Concurrent;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Collects <see cref="TaskScheduler.UnobservedTaskException"/> reports that come from Hull.Grpc: a faulted
/// task nobody awaited means an exception escaped a loop or a result was dropped. The event is process-wide,
/// so reports are filtered to Hull.Grpc's own code and collected from the moment this type is first used.
/// </summary>
internal static class UnobservedExceptions
{
    private static readonly ConcurrentQueue<Exception> Reports = new();

    static UnobservedExceptions()
    {
        TaskScheduler.UnobservedTaskException += (_, e) =>
        {
            foreach (var inner in e.Exception.Flatten().InnerExceptions)
                if (FromHullGrpc(inner)) Reports.Enqueue(inner);
        };
    }

    private static bool FromHullGrpc(Exception e) =>
        (e.StackTrace?.Contains("Hull.Grpc.", StringComparison.Ordinal) ?? false) ||
        e.Message.Contains("HTTP/2 stream", StringComparison.Ordinal) ||
        e is Hull.Grpc.Http2.RequestBodyTooLargeException or Hull.Grpc.Http2.Http2ConnectionException or Hull.Grpc.Http2.Http2StreamException;

    public static void Start() => _ = Reports.Count;

    /// <summary>Forces finalization of dropped tasks and fails if any of them carried an exception from Hull.Grpc.</summary>
    public static void AssertNone()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        var found = new List<Exception>();
        while (Reports.TryDequeue(out var e)) found.Add(e);
        Assert.True(found.Count == 0, "unobserved task exceptions:\n" + string.Join("\n---\n", found.Select(e => e.ToString())));
    }
}
