using System.Net.Sockets;
using Hull.Core;
using Hull.Runtime.Tasks;
using Microsoft.Extensions.Logging;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// Attach to a microVM container, in the shape the streaming server knows from conmon (<see cref="AttachConnection"/>):
/// a SEQPACKET connection whose packets start with the pipe they came from. hulld holds the other end: it forwards
/// the container's output as <see cref="ContainerOutput"/> reads it and writes what the client sends to the
/// container's stdin stream; when the client shuts its side down, a stdin_once container's stdin is closed. The
/// connection ends when the container's output ends or the client leaves. Terminal resizes are not forwarded yet (the
/// control FIFO conmon reads has no reader here, so a resize is a no-op).
/// </summary>
internal static class MicroVmAttach
{
    public static async Task<AttachConnection> OpenAsync(ContainerOutput output, AgentStream? stdin, bool stdinOnce, string controlFifo,
        ILogger logger, CancellationToken cancellationToken)
    {
        // A socket pair through an abstract listener: no file, no path-length limit, gone with the process.
        var endpoint = new UnixDomainSocketEndPoint($"\0hull-attach-{Guid.NewGuid():N}");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(endpoint);
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        Socket ours;
        try
        {
            await client.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            ours = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            client.Dispose();
            throw;
        }

        var session = new CancellationTokenSource();
        void End()
        {
            if (session.IsCancellationRequested) return;
            session.Cancel();
            ours.Dispose();
        }

        var subscription = output.Subscribe(async (pipe, data) =>
        {
            try
            {
                var packet = new byte[AttachConnection.MaxPacket];
                while (!data.IsEmpty)
                {
                    var chunk = data[..Math.Min(data.Length, AttachConnection.MaxPacket - 1)];
                    packet[0] = pipe;
                    chunk.CopyTo(packet.AsMemory(1));
                    await ours.SendAsync(packet.AsMemory(0, chunk.Length + 1), SocketFlags.None, session.Token).ConfigureAwait(false);
                    data = data[chunk.Length..];
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                End();
            }
        });
        _ = output.Completion.ContinueWith(_ => End(), TaskScheduler.Default);
        _ = Task.Run(async () =>
        {
            var buffer = new byte[AttachConnection.MaxPacket];
            try
            {
                int n;
                while ((n = await ours.ReceiveAsync(buffer, SocketFlags.None, session.Token).ConfigureAwait(false)) > 0)
                    if (stdin is not null) await stdin.WriteAsync(buffer.AsMemory(0, n), session.Token).ConfigureAwait(false);
                if (stdinOnce && stdin is not null) await stdin.CloseGuestSideAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or HullException)
            {
                logger.LogDebug("attach: input ended: {Error}", e.Message);
            }
        }, CancellationToken.None);
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, session.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { }
            subscription.Dispose();
            session.Dispose();
        }, CancellationToken.None);
        return new AttachConnection(client, controlFifo);
    }
}
