using System.Diagnostics;
using System.Text;

namespace Hull.Core.Processes;

/// <summary>One run of an external program: what to start, what to feed it and how long it may take.</summary>
public sealed record ProcessSpec(string FileName, IReadOnlyList<string> Arguments)
{
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
    /// <summary>When set, the child's environment is exactly <see cref="Environment"/> (CNI plugins, verifiers).</summary>
    public bool ClearEnvironment { get; init; }
    public string? WorkingDirectory { get; init; }
    public byte[]? Stdin { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Output beyond this is dropped (and flagged), so a chatty child cannot exhaust memory.</summary>
    public int MaxOutputBytes { get; init; } = 1 << 20;

    public override string ToString() => Arguments.Count == 0 ? FileName : $"{FileName} {string.Join(' ', Arguments)}";
}

public sealed record ProcessOutcome(int ExitCode, byte[] Stdout, string Stderr, bool OutputTruncated, TimeSpan Elapsed)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);
}

/// <summary>
/// The one way Hull starts short-lived external programs (runc, CNI plugins, verifiers, ...): a timeout
/// that kills the whole process tree, stderr captured for error messages, and no thread blocked while waiting.
/// </summary>
public static class ProcessRunner
{
    /// <summary>Runs to completion. A non-zero exit is returned, not thrown; a timeout or a missing binary throws <see cref="HullException"/>.</summary>
    public static async Task<ProcessOutcome> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(spec.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = spec.WorkingDirectory ?? "",
        };
        foreach (var a in spec.Arguments) info.ArgumentList.Add(a);
        if (spec.ClearEnvironment) info.Environment.Clear();
        if (spec.Environment is not null)
            foreach (var (k, v) in spec.Environment) info.Environment[k] = v;

        var started = Stopwatch.GetTimestamp();
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new HullException(ErrorKind.Internal, $"cannot start {spec.FileName}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new HullException(ErrorKind.FailedPrecondition, $"cannot start {spec.FileName}: {e.Message}", e);
        }
        using (process)
        {
            var stdout = new CappedReader(process.StandardOutput.BaseStream, spec.MaxOutputBytes);
            var stderr = new CappedReader(process.StandardError.BaseStream, spec.MaxOutputBytes);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(spec.Timeout);
            // Stdin is written alongside the wait, so a child that never reads it still meets the timeout.
            var stdin = WriteStdinAsync(process, spec.Stdin, timeout.Token);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                KillTree(process);
                if (cancellationToken.IsCancellationRequested) throw;
                throw new HullException(ErrorKind.DeadlineExceeded,
                    $"{spec.FileName} did not finish within {spec.Timeout.TotalSeconds:0.###} s and was killed");
            }
            finally
            {
                await stdin.ConfigureAwait(false);
            }
            // A grandchild may still hold the pipes open: never wait for it past the child's exit, and
            // keep what the child itself wrote.
            var drain = Task.WhenAll(stdout.Completion, stderr.Completion);
            await Task.WhenAny(drain, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None)).ConfigureAwait(false);
            var (outBytes, outCut) = stdout.Snapshot();
            var (errBytes, errCut) = stderr.Snapshot();
            return new ProcessOutcome(process.ExitCode, outBytes, Encoding.UTF8.GetString(errBytes).Trim(), outCut || errCut,
                Stopwatch.GetElapsedTime(started));
        }
    }

    private static async Task WriteStdinAsync(Process process, byte[]? input, CancellationToken cancellationToken)
    {
        try
        {
            if (input is { Length: > 0 }) await process.StandardInput.BaseStream.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            process.StandardInput.Close();
        }
        // The child exited or was killed without reading its input; its exit code or the timeout says why.
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
    }

    private static void KillTree(Process process)
    {
        try { process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // already gone
    }

    /// <summary>Reads a pipe to its end into a capped buffer whose contents can be taken at any time.</summary>
    private sealed class CappedReader
    {
        private readonly MemoryStream _buffer = new();
        private readonly int _max;
        private bool _truncated;

        public CappedReader(Stream stream, int max)
        {
            _max = max;
            Completion = ReadAsync(stream);
        }

        public Task Completion { get; }

        /// <summary>What was read so far; flagged truncated when the cap was hit or the pipe is still open.</summary>
        public (byte[] Bytes, bool Truncated) Snapshot()
        {
            lock (_buffer) return (_buffer.ToArray(), _truncated || !Completion.IsCompleted);
        }

        private async Task ReadAsync(Stream stream)
        {
            var chunk = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await stream.ReadAsync(chunk).ConfigureAwait(false)) > 0)
                {
                    lock (_buffer)
                    {
                        int keep = (int)Math.Min(read, _max - _buffer.Length);
                        if (keep > 0) _buffer.Write(chunk, 0, keep);
                        if (keep < read) _truncated = true;
                    }
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        }
    }
}
