using System.Net.Sockets;
using Hull.Core;
using Hull.Pods;
using Hull.Pods.Stores;
using Hull.Runtime.Tasks;
using Hull.Streaming;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hull.Cri.Streaming;

/// <summary>
/// The streaming server's runtime: exec runs a foreground <c>runc exec</c> per session through the pod's task endpoint
/// (<see cref="IInteractiveTaskService"/>), attach connects to conmon's attach socket, port-forward copies between the
/// client and the connection the pod's sandboxer opens (<see cref="PodManager.ConnectAsync"/>).
/// </summary>
public sealed class ContainerStreamingRuntime(ContainerManager containers, PodManager pods, ILogger<ContainerStreamingRuntime>? logger = null)
    : IStreamingRuntime
{
    /// <summary>How long output may still drain after the command ended (a background child may keep its stdout open).</summary>
    public static readonly TimeSpan OutputDrainGrace = TimeSpan.FromSeconds(2);

    private readonly ILogger _log = (ILogger?)logger ?? NullLogger.Instance;

    /// <summary>The container, checked to be running, and its pod's interactive task endpoint.</summary>
    public (ContainerRecord Record, IInteractiveTaskService Tasks) RunningContainer(string containerId)
    {
        var (record, tasks) = containers.Running(containerId, "it cannot be exec'd or attached to");
        if (tasks.TryGetExit(record.Id) is not null)
            throw new HullException(ErrorKind.FailedPrecondition, $"container \"{record.Id}\" is not running");
        return (record, tasks as IInteractiveTaskService
            ?? throw new HullException(ErrorKind.FailedPrecondition, $"the sandboxer of pod \"{record.SandboxId}\" does not support exec and attach"));
    }

    public async Task<int> ExecAsync(ExecRequest request, StreamingChannels channels, CancellationToken ct)
    {
        var (record, tasks) = RunningContainer(request.ContainerId);
        await using var exec = await tasks.StartExecAsync(record.Id,
            new InteractiveExecRequest(request.Command, request.Tty, request.Stdin, request.Stdout, request.Stderr && !request.Tty), ct).ConfigureAwait(false);
        using var kill = ct.Register(exec.Kill);
        using var pumps = CancellationTokenSource.CreateLinkedTokenSource(ct);

        if (channels.Stdin is { } clientIn && exec.Stdin is { } processIn)
            _ = Task.Run(async () =>
            {
                try
                {
                    await CopyAsync(clientIn, processIn, pumps.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (IsEndOfStream(e))
                {
                }
                exec.CloseStdin();
            }, CancellationToken.None);
        if (channels.Tty)
            _ = Task.Run(async () =>
            {
                try
                {
                    await foreach (var size in channels.ResizeEvents.WithCancellation(pumps.Token).ConfigureAwait(false)) exec.Resize(size.Width, size.Height);
                }
                catch (Exception e) when (IsEndOfStream(e))
                {
                }
            }, CancellationToken.None);
        var outputs = new List<Task>();
        if (exec.Stdout is { } processOut) outputs.Add(Pump(processOut, channels.Stdout, pumps.Token));
        if (exec.Stderr is { } processErr) outputs.Add(Pump(processErr, channels.Stderr, pumps.Token));

        int code = await exec.Exited.ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        try
        {
            await Task.WhenAll(outputs).WaitAsync(OutputDrainGrace, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _log.LogDebug("exec in {Id}: output still open {Grace} after the command ended; closing it", record.Id, OutputDrainGrace);
        }
        await pumps.CancelAsync().ConfigureAwait(false);
        return code;
    }

    public async Task AttachAsync(AttachRequest request, StreamingChannels channels, CancellationToken ct)
    {
        var (record, tasks) = RunningContainer(request.ContainerId);
        using var connection = await tasks.AttachAsync(record.Id, ct).ConfigureAwait(false);
        _log.LogDebug("attached to container {Id} (stdin {Stdin}, tty {Tty})", record.Id, channels.Stdin is not null, channels.Tty);
        using var pumps = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (channels.Stdin is { } clientIn)
            _ = Task.Run(async () =>
            {
                var buffer = new byte[8192];
                try
                {
                    int n;
                    while ((n = await clientIn.ReadAsync(buffer, pumps.Token).ConfigureAwait(false)) > 0)
                        await connection.SendStdinAsync(buffer.AsMemory(0, n), pumps.Token).ConfigureAwait(false);
                    // As CRI-O: only a stdin_once container without a terminal gets its stdin closed by the client.
                    if (record.StdinOnce && !record.Tty) connection.CloseStdin();
                }
                catch (Exception e) when (IsEndOfStream(e))
                {
                }
            }, CancellationToken.None);
        if (channels.Tty)
            _ = Task.Run(async () =>
            {
                try
                {
                    await foreach (var size in channels.ResizeEvents.WithCancellation(pumps.Token).ConfigureAwait(false)) connection.Resize(size.Width, size.Height);
                }
                catch (Exception e) when (IsEndOfStream(e))
                {
                }
            }, CancellationToken.None);
        try
        {
            var packet = new byte[AttachConnection.MaxPacket + 1024];
            while (true)
            {
                int n = await connection.ReceiveAsync(packet, ct).ConfigureAwait(false);
                if (n <= 0)
                {
                    _log.LogDebug("attach to container {Id}: the monitor closed the attach socket", record.Id);
                    break;
                }
                if (n == 1) continue;
                var target = packet[0] == AttachConnection.StderrPipe && !channels.Tty ? channels.Stderr : channels.Stdout;
                if (target is null) continue;
                await target.WriteAsync(packet.AsMemory(1, n - 1), ct).ConfigureAwait(false);
                await target.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            await pumps.CancelAsync().ConfigureAwait(false);
        }
    }

    public async Task PortForwardAsync(string podSandboxId, int port, Stream stream, CancellationToken ct)
    {
        await using var remote = await pods.ConnectAsync(podSandboxId, port, ct).ConfigureAwait(false);
        using var pumps = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var toPod = Task.Run(async () =>
        {
            try
            {
                await CopyAsync(stream, remote.Stream, pumps.Token).ConfigureAwait(false);
                await remote.CloseSendAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (IsEndOfStream(e) || e is HullException)
            {
            }
        }, CancellationToken.None);
        try
        {
            await CopyAsync(remote.Stream, stream, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or HullException && !ct.IsCancellationRequested)
        {
            _log.LogDebug("port-forward to {Pod}:{Port}: {Message}", podSandboxId, port, e.Message);
        }
        // The pod side closed: whatever the client still sends has nowhere to go.
        await pumps.CancelAsync().ConfigureAwait(false);
        await toPod.ConfigureAwait(false);
    }

    private static async Task Pump(Stream from, Stream? to, CancellationToken ct)
    {
        try
        {
            var buffer = new byte[32 * 1024];
            while (true)
            {
                int n = await from.ReadAsync(buffer, ct).ConfigureAwait(false);
                if (n == 0) return;
                if (to is null) continue;
                await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                await to.FlushAsync(ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (IsEndOfStream(e))
        {
            // EIO from a terminal whose last slave closed is its end of output.
        }
    }

    private static async Task CopyAsync(Stream from, Stream to, CancellationToken ct)
    {
        var buffer = new byte[32 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            await to.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    private static bool IsEndOfStream(Exception e) => e is IOException or OperationCanceledException or ObjectDisposedException or SocketException;
}
