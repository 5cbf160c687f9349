using System.Net.Sockets;
using System.Text;
using Hull.Api.MicroVm;
using Hull.Core;
using Hull.Grpc.Ttrpc;
using Hull.Linux.Processes;
using Microsoft.Extensions.Logging;
using RpcException = global::Grpc.Core.RpcException;
using StatusCode = global::Grpc.Core.StatusCode;

namespace Hull.Sandbox.MicroVm;

/// <summary>
/// hulld's ttrpc connection to one guest agent: qemu's chardev socket (the host end of the virtio-serial port).
/// qemu accepts one client at a time and takes the next after it disconnects, which is how hulld reconnects after a
/// restart. Calls map the agent's gRPC status codes to <see cref="HullException"/> kinds.
/// </summary>
public sealed class AgentConnection : IAsyncDisposable
{
    private readonly TtrpcClient _ttrpc;

    private AgentConnection(TtrpcClient ttrpc)
    {
        _ttrpc = ttrpc;
        Client = new Agent.AgentClient(ttrpc);
    }

    public Agent.AgentClient Client { get; }

    /// <summary>Completes when the connection has ended (qemu exited, or it was disposed).</summary>
    public Task Completion => _ttrpc.Completion;

    public bool IsClosed => _ttrpc.IsClosed;

    /// <summary>Connects to the socket, retrying briefly while qemu has not created it yet.</summary>
    public static async Task<AgentConnection> ConnectAsync(string socketPath, ILogger logger, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        for (int attempt = 0; ; attempt++)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                if (Encoding.UTF8.GetByteCount(socketPath) < 108)
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                else
                {
                    // Longer than sun_path: reach it through a descriptor of its directory.
                    using var directory = Terminals.OpenDirectoryPath(Path.GetDirectoryName(socketPath)!);
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint($"/proc/self/fd/{directory.Fd}/{Path.GetFileName(socketPath)}"),
                        cancellationToken).ConfigureAwait(false);
                }
                return new AgentConnection(new TtrpcClient(new NetworkStream(socket, ownsSocket: true), logger));
            }
            catch (Exception e) when (attempt < 50 && e is SocketException { SocketErrorCode: SocketError.AddressNotAvailable or SocketError.ConnectionRefused }
                                          or Linux.SyscallException)
            {
                socket.Dispose();
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new HullException(ErrorKind.Unavailable, $"cannot connect to the guest agent at {socketPath}: {e.Message}", e);
            }
        }
    }

    /// <summary>Runs one call with a deadline; the agent's status becomes a <see cref="HullException"/> of the matching kind.</summary>
    public async Task<T> CallAsync<T>(string what, Func<Agent.AgentClient, DateTime, CancellationToken, global::Grpc.Core.AsyncUnaryCall<T>> call,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await call(Client, DateTime.UtcNow + timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{what}: cancelled", e, cancellationToken);
        }
        catch (RpcException e)
        {
            throw new HullException(KindOf(e.StatusCode), $"{what}: {e.Status.Detail}", e);
        }
    }

    public static ErrorKind KindOf(StatusCode code) => code switch
    {
        StatusCode.NotFound => ErrorKind.NotFound,
        StatusCode.AlreadyExists => ErrorKind.AlreadyExists,
        StatusCode.InvalidArgument => ErrorKind.InvalidArgument,
        StatusCode.FailedPrecondition => ErrorKind.FailedPrecondition,
        StatusCode.Unavailable => ErrorKind.Unavailable,
        StatusCode.DeadlineExceeded => ErrorKind.DeadlineExceeded,
        StatusCode.ResourceExhausted => ErrorKind.ResourceExhausted,
        _ => ErrorKind.Internal,
    };

    public ValueTask DisposeAsync() => _ttrpc.DisposeAsync();
}
