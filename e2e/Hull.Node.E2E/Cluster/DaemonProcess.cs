using System.Diagnostics;
using Hull.E2E.Fixtures;

namespace Hull.Node.E2E.Cluster;

/// <summary>
/// A long-running server the fixture started (etcd, kube-apiserver, the kubelet, containerd, ...): stdout and stderr
/// go to one log file, and it is stopped by its pid only: SIGTERM, then SIGKILL after a grace period.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Task _pumps;

    private DaemonProcess(string name, string logPath, Process process)
    {
        Name = name;
        LogPath = logPath;
        _process = process;
        _log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        _pumps = Task.WhenAll(Pump(process.StandardOutput), Pump(process.StandardError));
    }

    public string Name { get; }
    public string LogPath { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Everything the process wrote so far.</summary>
    public string Log
    {
        get
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(stream).ReadToEnd();
        }
    }

    /// <summary>The last lines of the log, for failure messages.</summary>
    public string Tail(int lines = 40) => string.Join('\n', Log.Split('\n').TakeLast(lines));

    public static DaemonProcess Start(string name, string file, IEnumerable<string> args, string logPath,
        IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(logPath)!,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) info.Environment[k] = v;
        File.AppendAllText(logPath, $"=== {DateTime.UtcNow:O} {file} {string.Join(' ', args)}\n");
        var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        return new DaemonProcess(name, logPath, process);
    }

    private async Task Pump(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
            lock (_log) _log.WriteLine(line);
    }

    /// <summary>Waits until <paramref name="ready"/> holds; fails with the log's tail if the process exits first.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> ready, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before {what}:\n{Tail()}");
            try
            {
                if (await ready()) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            catch (IOException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{Name} did not reach \"{what}\" within {timeout}:\n{Tail()}");
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; waits for the exit.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (!_process.HasExited)
        {
            HulldProcess.Signal(_process.Id, 15);
            using var cts = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                await KillAsync();
            }
        }
        await DrainAsync();
    }

    /// <summary>SIGKILL to this process only.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            HulldProcess.Signal(_process.Id, 9);
            await _process.WaitForExitAsync();
        }
        await DrainAsync();
    }

    // A child that inherited stdout (none should) must not hang the teardown.
    private Task DrainAsync() => Task.WhenAny(_pumps, Task.Delay(TimeSpan.FromSeconds(5)));

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        lock (_log) _log.Dispose();
        _process.Dispose();
    }
}
