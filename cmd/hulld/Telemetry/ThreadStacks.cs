using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Runtime;

namespace Hulld.Telemetry;

/// <summary>
/// The managed stack of every thread of this process, the way <c>dotnet-stack</c> or a Go goroutine dump shows them.
/// .NET cannot walk other threads' stacks from inside the process, so the runtime is asked (over its diagnostics IPC
/// channel) to write a minidump of itself with its own createdump, and ClrMD reads the stacks from it with the
/// runtime's DAC; the dump is deleted at once. It pauses the process for about the time createdump needs (a few
/// seconds), so one dump is taken at a time.
/// </summary>
internal sealed class ThreadStacks(string directory)
{
    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>The stacks as text, or null when another dump is being taken.</summary>
    public async Task<string?> CaptureAsync(CancellationToken cancellationToken)
    {
        if (!await _one.WaitAsync(0, cancellationToken).ConfigureAwait(false)) return null;
        string path = Path.Combine(directory, $"hulld-stacks-{Environment.ProcessId}.dmp");
        try
        {
            await new DiagnosticsClient(Environment.ProcessId).WriteDumpAsync(DumpType.Normal, path, logDumpGeneration: false, cancellationToken)
                .ConfigureAwait(false);
            return Read(path);
        }
        finally
        {
            File.Delete(path);
            _one.Release();
        }
    }

    private static string Read(string path)
    {
        using var target = DataTarget.LoadDump(path);
        // A minidump does not hold the runtime's version resource, so the DAC cannot be matched by version; it is the
        // one of the runtime that wrote the dump, this one.
        string dac = Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libmscordaccore.so");
        using var runtime = target.ClrVersions[0].CreateRuntime(dac, ignoreMismatch: true);
        var text = new StringBuilder();
        foreach (var thread in runtime.Threads.Where(t => t.IsAlive))
        {
            text.Append("thread ").Append(thread.ManagedThreadId).Append(" (os thread ").Append(thread.OSThreadId).Append(')');
            if (thread.IsFinalizer) text.Append(" finalizer");
            text.AppendLine();
            foreach (var frame in thread.EnumerateStackTrace())
            {
                if (frame.Method is { } method) text.Append("    at ").AppendLine(method.Signature ?? method.Name ?? "?");
                else if (frame.FrameName is { } name) text.Append("    [").Append(name).AppendLine("]");
            }
            text.AppendLine();
        }
        return text.ToString();
    }
}
