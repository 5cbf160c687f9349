using Google.Protobuf;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Linux.Processes;
using Hull.Runtime.Tasks;
using Microsoft.Extensions.Logging;
using RpcException = global::Grpc.Core.RpcException;
using StatusCode = global::Grpc.Core.StatusCode;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// One direction of an agent stream as a .NET <see cref="Stream"/>: reads are ReadStream long polls (0 at the end),
/// writes are WriteStream calls (answered once the guest has written the data), and disposing a writable stream
/// closes the guest side (stdin EOF). Used for exec stdio and port-forward connections.
/// </summary>
public sealed class AgentStream(AgentConnection agent, uint streamId, bool readable, bool writable, TimeSpan callTimeout) : Stream
{
    private bool _eof;
    private int _writeClosed, _forgotten;

    public uint StreamId => streamId;
    public override bool CanRead => readable;
    public override bool CanWrite => writable;
    public override bool CanSeek => false;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!readable) throw new NotSupportedException();
        if (_eof || buffer.IsEmpty) return 0;
        try
        {
            while (true)
            {
                var chunk = await agent.Client.ReadStreamAsync(new ReadStreamRequest { StreamId = streamId, MaxBytes = (uint)Math.Min(buffer.Length, 16 * 1024) },
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                _eof = chunk.Eof;
                if (!chunk.Data.IsEmpty)
                {
                    chunk.Data.Memory.CopyTo(buffer);
                    return chunk.Data.Length;
                }
                if (_eof) return 0;
            }
        }
        // The stream is gone with its process or connection: that is its end.
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Unavailable)
        {
            _eof = true;
            return 0;
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!writable) throw new NotSupportedException();
        while (!buffer.IsEmpty)
        {
            // Chunks well inside ttrpc's 4 MiB frame limit.
            var chunk = buffer[..Math.Min(buffer.Length, 256 * 1024)];
            await agent.CallAsync($"write to stream {streamId}", (c, d, ct) => c.WriteStreamAsync(
                new WriteStreamRequest { StreamId = streamId, Data = ByteString.CopyFrom(chunk.Span) }, deadline: d, cancellationToken: ct),
                callTimeout, cancellationToken).ConfigureAwait(false);
            buffer = buffer[chunk.Length..];
        }
    }

    /// <summary>Closes the host-to-guest direction (both: the whole stream, for a port-forward the client left).</summary>
    public async Task CloseGuestSideAsync(bool both = false)
    {
        if (Interlocked.Exchange(ref both ? ref _forgotten : ref _writeClosed, 1) != 0) return;
        try
        {
            await agent.CallAsync($"close stream {streamId}", (c, d, ct) => c.CloseStreamAsync(new StreamRequest { StreamId = streamId, Both = both },
                deadline: d, cancellationToken: ct), TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
        }
        catch (HullException) { } // gone already
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Closes what this side may still have open: stdin's write side, or a whole port-forward connection.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (writable) await CloseGuestSideAsync(both: readable).ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>An exec session in a microVM container: its stdio are agent streams, its exit a WaitProcess long poll.</summary>
public sealed class AgentExec : InteractiveExec
{
    private readonly AgentConnection _agent;
    private readonly string _containerId, _execId;
    private readonly ILogger _logger;
    private readonly AgentStream? _stdin, _stdout, _stderr;
    private readonly CancellationTokenSource _disposed = new();

    public AgentExec(AgentConnection agent, string containerId, string execId, ProcessStarted started, InteractiveExecRequest request,
        TimeSpan callTimeout, ILogger logger)
    {
        _agent = agent;
        _containerId = containerId;
        _execId = execId;
        _logger = logger;
        Tty = request.Tty;
        if (request.Stdin && started.StdinStream != 0) _stdin = new AgentStream(agent, started.StdinStream, false, true, callTimeout);
        if (started.StdoutStream != 0) _stdout = new AgentStream(agent, started.StdoutStream, true, false, callTimeout);
        if (!request.Tty && started.StderrStream != 0) _stderr = new AgentStream(agent, started.StderrStream, true, false, callTimeout);
        // Output nobody asked for is still read, so the process never blocks on a full pipe.
        if (!request.Stdout && _stdout is not null) _ = DiscardAsync(_stdout);
        if (!request.Stderr && _stderr is not null) _ = DiscardAsync(_stderr);
        Exited = WaitAsync();
        if (!request.Stdout) _stdout = null;
        if (!request.Stderr) _stderr = null;
    }

    public override Stream? Stdin => _stdin;
    public override Stream? Stdout => _stdout;
    public override Stream? Stderr => _stderr;
    public override bool Tty { get; }
    public override Task<int> Exited { get; }

    private async Task<int> WaitAsync()
    {
        try
        {
            var exit = await _agent.Client.WaitProcessAsync(new ProcessRequest { ContainerId = _containerId, ExecId = _execId },
                cancellationToken: _disposed.Token).ConfigureAwait(false);
            return exit.ExitCode;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.NotFound or StatusCode.Cancelled)
        {
            return 255; // the VM, the container or this session went first
        }
    }

    private async Task DiscardAsync(Stream stream)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (await stream.ReadAsync(buffer, _disposed.Token).ConfigureAwait(false) > 0) { }
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException) { }
    }

    public override void CloseStdin()
    {
        if (_stdin is not null) _ = _stdin.CloseGuestSideAsync();
    }

    public override void Resize(ushort width, ushort height)
    {
        if (!Tty) return;
        _ = Fire("resize", (c, d, ct) => c.ResizeTtyAsync(new ResizeTtyRequest { ContainerId = _containerId, ExecId = _execId, Width = width, Height = height },
            deadline: d, cancellationToken: ct));
    }

    public override void Kill() =>
        _ = Fire("kill", (c, d, ct) => c.SignalProcessAsync(new SignalProcessRequest { ContainerId = _containerId, ExecId = _execId, Signal = Signals.SIGKILL },
            deadline: d, cancellationToken: ct));

    private async Task Fire(string what, Func<Agent.AgentClient, DateTime, CancellationToken, global::Grpc.Core.AsyncUnaryCall<Empty>> call)
    {
        try
        {
            await _agent.CallAsync($"exec {_execId} in container \"{_containerId}\": {what}", call, TimeSpan.FromSeconds(10), CancellationToken.None)
                .ConfigureAwait(false);
        }
        catch (HullException e)
        {
            _logger.LogDebug("{Error}", e.Message);
        }
    }

    /// <summary>Kills the command if it still runs, waits for its end and has the guest forget it.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (!Exited.IsCompleted)
        {
            Kill();
            await Task.WhenAny(Exited, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        }
        await _disposed.CancelAsync().ConfigureAwait(false);
        if (_stdin is not null) await _stdin.CloseGuestSideAsync().ConfigureAwait(false);
        try
        {
            await _agent.CallAsync($"delete exec {_execId} of container \"{_containerId}\"", (c, d, ct) => c.DeleteProcessAsync(
                new ProcessRequest { ContainerId = _containerId, ExecId = _execId }, deadline: d, cancellationToken: ct), TimeSpan.FromSeconds(10),
                CancellationToken.None).ConfigureAwait(false);
        }
        catch (HullException e)
        {
            _logger.LogDebug("{Error}", e.Message);
        }
    }
}
