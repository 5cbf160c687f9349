using System.Globalization;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Core.Processes;
using Hull.Linux.Processes;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// One qemu microVM and the connection to its agent. qemu daemonizes (its own session, not hulld's child), so it
/// keeps running when hulld restarts; <see cref="Reattach"/> finds it again from its pid file. Its exit is watched
/// through a pidfd. Errors carry the tail of the guest console, which is where a failed boot says why.
/// </summary>
public sealed class MicroVm : IAsyncDisposable
{
    private const int ConsoleTailLines = 25;

    private readonly ILogger _logger;
    private readonly PidFd _process;
    private readonly CancellationTokenSource _disposed = new();
    private AgentConnection? _agent;
    private volatile bool _exited;

    private MicroVm(QemuLaunch launch, int pid, PidFd process, ILogger logger)
    {
        Launch = launch;
        Pid = pid;
        _process = process;
        _logger = logger;
        Exited = WatchAsync();
    }

    private async Task WatchAsync()
    {
        try
        {
            await _process.WaitForExitAsync(_disposed.Token).ConfigureAwait(false);
            _exited = true;
        }
        catch (OperationCanceledException) { }
    }

    public QemuLaunch Launch { get; }
    public int Pid { get; }

    /// <summary>Completes when qemu has exited (or this object is disposed).</summary>
    public Task Exited { get; }

    /// <summary>qemu has exited (after <see cref="DisposeAsync"/>: as far as was seen before).</summary>
    public bool HasExited => _exited || (!_disposed.IsCancellationRequested && _process.HasExited);

    public AgentConnection Agent =>
        _agent is { IsClosed: false } agent ? agent
            : throw new HullException(ErrorKind.Unavailable, $"microVM {Launch.Name}: not connected to its agent{(HasExited ? " (qemu has exited)" : "")}");

    /// <summary>
    /// Starts qemu (inside <paramref name="netNsPath"/> when the VM has a TAP there) and returns once it has daemonized;
    /// qemu's own errors (a kernel it cannot load, a missing device) fail here with its message.
    /// </summary>
    public static async Task<MicroVm> StartAsync(string qemuPath, QemuLaunch launch, string? netNsPath, ILogger logger, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(launch.Directory);
        foreach (var stale in new[] { launch.ConsoleLog, launch.AgentSocket, launch.PidFile }) File.Delete(stale);
        var qemuArgs = QemuCommand.Arguments(launch);
        var spec = netNsPath is null
            ? new ProcessSpec(qemuPath, qemuArgs)
            : new ProcessSpec("nsenter", [$"--net={netNsPath}", "--", qemuPath, .. qemuArgs]);
        logger.LogDebug("microVM {Name}: {Command}", launch.Name, spec);
        var outcome = await ProcessRunner.RunAsync(spec with { Timeout = TimeSpan.FromSeconds(60), WorkingDirectory = launch.Directory }, cancellationToken)
            .ConfigureAwait(false);
        if (outcome.ExitCode != 0)
            throw new HullException(ErrorKind.FailedPrecondition,
                $"microVM {launch.Name}: qemu failed to start (exit code {outcome.ExitCode}): {FirstLines(outcome.Stderr + outcome.StdoutText, 10)}");
        var vm = Reattach(launch) ?? throw new HullException(ErrorKind.Internal,
            $"microVM {launch.Name}: qemu started but {launch.PidFile} names no running process; console: {ReadConsoleTail(launch.ConsoleLog)}");
        vm._logger.LogInformation("microVM {Name}: qemu running as pid {Pid} ({Accel})", launch.Name, vm.Pid, launch.Accel);
        return vm;
    }

    /// <summary>The VM of <paramref name="launch"/> if its qemu is still running (the pid file's process, writing this console log).</summary>
    public static MicroVm? Reattach(QemuLaunch launch, ILogger? logger = null)
    {
        if (!int.TryParse(TryRead(launch.PidFile)?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) return null;
        var process = PidFd.TryOpen(pid);
        if (process is null) return null;
        // The pid may have been reused since: the process must be this VM's qemu.
        var cmdline = TryRead($"/proc/{pid}/cmdline") ?? "";
        if (!cmdline.Contains(QemuCommand.Escape(launch.ConsoleLog), StringComparison.Ordinal) || process.HasExited)
        {
            process.Dispose();
            return null;
        }
        return new MicroVm(launch, pid, process, logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
    }

    /// <summary>
    /// Connects to the agent and waits for its first answer (the guest has booted when it answers). Fails with the
    /// console's tail when qemu exits first or <paramref name="timeout"/> passes.
    /// </summary>
    public async Task<PingResponse> ConnectAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        await DisconnectAsync().ConfigureAwait(false);
        using var scope = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        scope.CancelAfter(timeout);
        try
        {
            _agent = await AgentConnection.ConnectAsync(Launch.AgentSocket, _logger, scope.Token).ConfigureAwait(false);
            // qemu holds the request until the guest opens its port, so one call waits for the whole boot.
            var ping = _agent.CallAsync("ping", (c, deadline, ct) => c.PingAsync(new PingRequest(), deadline: deadline, cancellationToken: ct),
                timeout, scope.Token);
            var first = await Task.WhenAny(ping, Exited).ConfigureAwait(false);
            if (first == Exited)
                throw new HullException(ErrorKind.Unavailable, $"microVM {Launch.Name}: qemu exited while the guest booted; console: {ConsoleTail()}");
            return await ping.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or HullException { Kind: ErrorKind.DeadlineExceeded } && !cancellationToken.IsCancellationRequested)
        {
            throw new HullException(ErrorKind.DeadlineExceeded,
                $"microVM {Launch.Name}: the guest agent did not answer within {timeout.TotalSeconds:0} s ({Launch.Accel}); console: {ConsoleTail()}", e);
        }
        catch (HullException e) when (HasExited && !e.Message.Contains("console:", StringComparison.Ordinal))
        {
            throw new HullException(ErrorKind.Unavailable, $"microVM {Launch.Name}: qemu exited while the guest booted; console: {ConsoleTail()}", e);
        }
    }

    /// <summary>Asks the guest to power off, then kills qemu if it has not exited within <paramref name="timeout"/>. Idempotent.</summary>
    public async Task PowerOffAsync(TimeSpan timeout)
    {
        if (!HasExited && _agent is { IsClosed: false } agent)
        {
            try
            {
                await agent.CallAsync("shutdown", (c, deadline, ct) => c.ShutdownAsync(new Empty(), deadline: deadline, cancellationToken: ct),
                    TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
                await Exited.WaitAsync(timeout).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HullException or TimeoutException)
            {
                _logger.LogWarning("microVM {Name}: did not power off cleanly ({Error}); killing qemu", Launch.Name, e.Message);
            }
        }
        Kill();
        await Exited.ConfigureAwait(false);
        await DisconnectAsync().ConfigureAwait(false);
    }

    /// <summary>Closes the agent connection (qemu keeps running; hulld shutting down does this).</summary>
    public async Task DisconnectAsync()
    {
        if (Interlocked.Exchange(ref _agent, null) is { } agent) await agent.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>SIGKILL to qemu (through the pidfd: never another process that reused the pid).</summary>
    public void Kill()
    {
        if (!HasExited && !_disposed.IsCancellationRequested) _process.TrySendSignal(Signals.SIGKILL);
    }

    /// <summary>The last lines of the guest console (kernel messages, init and agent errors).</summary>
    public string ConsoleTail(int lines = ConsoleTailLines) => ReadConsoleTail(Launch.ConsoleLog, lines);

    public static string ReadConsoleTail(string path, int lines = ConsoleTailLines)
    {
        var text = TryRead(path);
        if (string.IsNullOrWhiteSpace(text)) return "(empty)";
        var all = text.Replace("\r", "", StringComparison.Ordinal).TrimEnd().Split('\n');
        return string.Join(" | ", all.Skip(Math.Max(0, all.Length - lines)).Select(l => l.Trim()));
    }

    private static string FirstLines(string text, int lines) =>
        string.Join(" | ", text.Trim().Split('\n').Take(lines).Select(l => l.Trim()));

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync().ConfigureAwait(false);
        await _disposed.CancelAsync().ConfigureAwait(false);
        await Exited.ConfigureAwait(false);
        _process.Dispose();
        _disposed.Dispose();
    }
}
