using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Hull.Linux.Processes;

namespace Hull.Runtime.Tasks;

/// <summary>One message conmon writes on its sync pipe: with --api-version 1 <c>{"data": N, "message": "…"}</c>,
/// where N is the container (or exec) pid, then for exec the exit code; -1 with a message when something failed.</summary>
internal sealed record ConmonMessage(int Data, string? Message);

/// <summary>
/// Starting conmon the way CRI-O does. conmon learns two descriptors from its environment: <c>_OCI_STARTPIPE</c>,
/// which it reads one byte from before it forks anything (so hulld could first move it into a cgroup), and
/// <c>_OCI_SYNCPIPE</c>, on which it reports the pid after <c>runc create</c>/<c>runc exec</c> (or runc's error) and, for
/// exec, the exit code. Both are socket pairs (as in CRI-O) handed to the child at fixed numbers 3 and 4 by
/// posix_spawn file actions: <see cref="System.Diagnostics.Process"/> cannot pass extra descriptors, and clearing
/// close-on-exec on our end would leak it into every other child started concurrently (a leaked write end would
/// keep the pipe from ever reporting EOF). conmon's own stdout/stderr go to a third socket so its start-up errors
/// reach the error message; it replaces them with /dev/null once it daemonizes.
/// </summary>
internal sealed class ConmonProcess : IDisposable
{
    private const int SyncFd = 3, StartFd = 4;

    private readonly Socket _sync;
    private readonly Socket _start;
    private readonly Socket _err;
    private readonly Task<string> _stderr;
    private readonly byte[] _buffer = new byte[4096];
    private readonly MemoryStream _pending = new();
    private bool _reaped;

    private ConmonProcess(int pid, Socket sync, Socket start, Socket err)
    {
        Pid = pid;
        _sync = sync;
        _start = start;
        _err = err;
        _stderr = Descriptors.ReadAllAsync(err, 64 << 10);
    }

    /// <summary>The process we started: the daemonizing conmon's short-lived first process, or conmon itself with --sync.</summary>
    public int Pid { get; }

    public static ConmonProcess Spawn(string conmonPath, IReadOnlyList<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string>? extraEnvironment)
    {
        var (syncParent, syncChild) = Descriptors.CreateSocketPair();
        var (startParent, startChild) = Descriptors.CreateSocketPair();
        var (errParent, errChild) = Descriptors.CreateSocketPair();
        Socket? sync = null, start = null, err = null;
        try
        {
            var environment = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["PATH"] = Hull.Core.Processes.Executables.SearchPath,
            };
            if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg) environment["XDG_RUNTIME_DIR"] = xdg;
            if (extraEnvironment is not null)
                foreach (var (key, value) in extraEnvironment) environment[key] = value;
            environment["_OCI_SYNCPIPE"] = SyncFd.ToString(System.Globalization.CultureInfo.InvariantCulture);
            environment["_OCI_STARTPIPE"] = StartFd.ToString(System.Globalization.CultureInfo.InvariantCulture);

            int pid = ProcessSpawner.Spawn(new SpawnRequest(conmonPath, arguments)
            {
                Environment = environment,
                WorkingDirectory = workingDirectory,
                Descriptors = new Dictionary<int, System.Runtime.InteropServices.SafeHandle>
                {
                    [1] = errChild,
                    [2] = errChild,
                    [SyncFd] = syncChild,
                    [StartFd] = startChild,
                },
            });
            sync = syncParent.ToSocket();
            start = startParent.ToSocket();
            err = errParent.ToSocket();
            return new ConmonProcess(pid, sync, start, err);
        }
        catch
        {
            sync?.Dispose();
            start?.Dispose();
            err?.Dispose();
            syncParent.Dispose();
            startParent.Dispose();
            errParent.Dispose();
            throw;
        }
        finally
        {
            // Only the child keeps these ends: EOF on our side then means conmon (and all its copies) closed them.
            syncChild.Dispose();
            startChild.Dispose();
            errChild.Dispose();
        }
    }

    /// <summary>Lets conmon go on (the start pipe); harmless when it already died.</summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _start.SendAsync(new byte[] { 0 }, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // conmon is gone already; its exit status and stderr tell why.
        }
        _start.Dispose();
    }

    /// <summary>The next sync message, or null on EOF (conmon exited or closed the pipe).</summary>
    public async Task<ConmonMessage?> ReadMessageAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryTakeLine() is { } line)
            {
                if (line.Trim().Length == 0) continue;
                return Parse(line);
            }
            int read = await _sync.ReceiveAsync(_buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                var rest = Encoding.UTF8.GetString(_pending.ToArray());
                _pending.SetLength(0);
                return rest.Trim().Length == 0 ? null : Parse(rest);
            }
            _pending.Write(_buffer, 0, read);
        }
    }

    /// <summary>What conmon printed before it detached (or exited), waiting at most <paramref name="wait"/> for it.</summary>
    public async Task<string> StderrAsync(TimeSpan wait)
    {
        try
        {
            return (await _stderr.WaitAsync(wait).ConfigureAwait(false)).Trim();
        }
        catch (TimeoutException)
        {
            return "";
        }
    }

    /// <summary>Waits for the spawned process and reaps it.</summary>
    public async Task<ExitStatus> WaitForExitAsync(CancellationToken cancellationToken)
    {
        var status = await ChildProcesses.WaitForExitAsync(Pid, cancellationToken).ConfigureAwait(false);
        _reaped = true;
        return status;
    }

    /// <summary>Kills the spawned process if it still runs and reaps it in the background (never leaves a zombie).</summary>
    public void KillAndReap()
    {
        if (_reaped) return;
        _reaped = true;
        Signals.TrySend(Pid, Signals.SIGKILL);
        _ = ChildProcesses.WaitForExitAsync(Pid);
    }

    public void Dispose()
    {
        _sync.Dispose();
        _start.Dispose();
        _err.Dispose();
    }

    private string? TryTakeLine()
    {
        var bytes = _pending.GetBuffer().AsSpan(0, (int)_pending.Length);
        int newline = bytes.IndexOf((byte)'\n');
        if (newline < 0) return null;
        var line = Encoding.UTF8.GetString(bytes[..newline]);
        var rest = bytes[(newline + 1)..].ToArray();
        _pending.SetLength(0);
        _pending.Write(rest);
        return line;
    }

    internal static ConmonMessage Parse(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            int? data = null;
            foreach (var key in new[] { "data", "pid", "exit_code" })
                if (root.TryGetProperty(key, out var value) && value.TryGetInt32(out var number))
                {
                    data = number;
                    break;
                }
            string? message = root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            return new ConmonMessage(data ?? -1, data is null ? $"conmon sent a message without data: {json.Trim()}" : message);
        }
        catch (JsonException)
        {
            return new ConmonMessage(-1, $"conmon sent an unreadable message: {json.Trim()}");
        }
    }
}
