using System.Text;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Runtime.Tasks;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// A container's output, read from the agent's stdout and stderr streams until their end: each chunk goes to the CRI
/// log file in conmon's format (a line per newline tagged F, the rest of a chunk tagged P) and to every attached
/// client. The host side writes the log because the container runs in the guest; the kubelet reads it unchanged.
/// </summary>
public sealed class ContainerOutput : IAsyncDisposable
{
    public const byte StdoutPipe = AttachConnection.StdoutPipe, StderrPipe = AttachConnection.StderrPipe;
    private const uint ReadSize = 16 * 1024;

    private readonly AgentConnection _agent;
    private readonly string _containerId;
    private readonly string _logPath;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<Func<byte, ReadOnlyMemory<byte>, ValueTask>> _subscribers = [];
    private FileStream? _log;

    public ContainerOutput(AgentConnection agent, string containerId, string logPath, uint stdoutStream, uint stderrStream, ILogger logger)
    {
        _agent = agent;
        _containerId = containerId;
        _logPath = logPath;
        _logger = logger;
        OpenLog();
        var pumps = new List<Task>();
        if (stdoutStream != 0) pumps.Add(Task.Run(() => PumpAsync(stdoutStream, "stdout", StdoutPipe)));
        if (stderrStream != 0) pumps.Add(Task.Run(() => PumpAsync(stderrStream, "stderr", StderrPipe)));
        Completion = Task.WhenAll(pumps);
    }

    /// <summary>Completes when every stream has ended (or the pump was stopped).</summary>
    public Task Completion { get; }

    /// <summary>Receives output from now on until the returned handle is disposed.</summary>
    public IDisposable Subscribe(Func<byte, ReadOnlyMemory<byte>, ValueTask> receiver)
    {
        lock (_lock) _subscribers.Add(receiver);
        return new Unsubscriber(this, receiver);
    }

    private sealed class Unsubscriber(ContainerOutput output, Func<byte, ReadOnlyMemory<byte>, ValueTask> receiver) : IDisposable
    {
        public void Dispose()
        {
            lock (output._lock) output._subscribers.Remove(receiver);
        }
    }

    /// <summary>Closes and reopens the log file (the kubelet has rotated it: renamed the old one).</summary>
    public void Reopen()
    {
        lock (_lock)
        {
            _log?.Dispose();
            _log = null;
            OpenLog();
        }
    }

    private void OpenLog()
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_logPath)!);
            _log = new FileStream(_logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HullException(ErrorKind.Internal, $"container \"{_containerId}\": cannot open its log {_logPath}: {e.Message}", e);
        }
    }

    private async Task PumpAsync(uint stream, string name, byte pipe)
    {
        try
        {
            while (true)
            {
                // A long poll: the agent answers when there is output or the stream has ended.
                var chunk = await _agent.Client.ReadStreamAsync(new ReadStreamRequest { StreamId = stream, MaxBytes = ReadSize },
                    cancellationToken: _stop.Token).ConfigureAwait(false);
                if (!chunk.Data.IsEmpty) await DeliverAsync(name, pipe, chunk.Data.Memory).ConfigureAwait(false);
                if (chunk.Eof) return;
            }
        }
        catch (Exception e) when (e is global::Grpc.Core.RpcException or OperationCanceledException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested) _logger.LogDebug("container {Id}: {Stream} ended: {Error}", _containerId, name, e.Message);
        }
    }

    private async Task DeliverAsync(string stream, byte pipe, ReadOnlyMemory<byte> data)
    {
        Func<byte, ReadOnlyMemory<byte>, ValueTask>[] receivers;
        lock (_lock)
        {
            WriteLog(stream, data.Span);
            receivers = [.. _subscribers];
        }
        foreach (var receiver in receivers)
        {
            try
            {
                await receiver(pipe, data).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogDebug("container {Id}: an attached client failed: {Error}", _containerId, e.Message);
            }
        }
    }

    /// <summary>Call with the lock held.</summary>
    private void WriteLog(string stream, ReadOnlySpan<byte> data)
    {
        if (_log is null) return;
        var now = DateTimeOffset.Now;
        try
        {
            while (!data.IsEmpty)
            {
                int newline = data.IndexOf((byte)'\n');
                var line = newline < 0 ? data : data[..newline];
                _log.Write(Encoding.UTF8.GetBytes(CriLog.Prefix(now, stream, partial: newline < 0)));
                _log.Write(line);
                _log.WriteByte((byte)'\n');
                data = newline < 0 ? [] : data[(newline + 1)..];
            }
            _log.Flush();
        }
        catch (IOException e)
        {
            _logger.LogWarning("container {Id}: cannot write its log {Path}: {Error}", _containerId, _logPath, e.Message);
        }
    }

    /// <summary>Waits up to <paramref name="grace"/> for the output to end, then stops reading and closes the log.</summary>
    public async Task DrainAndStopAsync(TimeSpan grace)
    {
        await Task.WhenAny(Completion, Task.Delay(grace)).ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Completion.ConfigureAwait(false);
        lock (_lock)
        {
            _log?.Dispose();
            _log = null;
            _subscribers.Clear();
        }
    }
}
