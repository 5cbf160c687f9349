using System.Net;
using System.Net.Sockets;
using Hull.Core;
using Hull.Linux.Namespaces;
using Hull.Sandbox.Controller;
using Hull.Sandbox.Namespaces;

namespace Hull.Sandbox.PodSandbox;

public sealed partial class PodSandboxController
{
    /// <summary>
    /// Dials 127.0.0.1:<paramref name="port"/> from a socket created and connected inside the pod's network namespace
    /// (a socket keeps its namespace, so it is used from here); a host-network pod is dialled on the node.
    /// </summary>
    public async Task<PodConnection> ConnectAsync(string sandboxId, int port, CancellationToken cancellationToken)
    {
        var netns = Get(sandboxId).Instance.NetNsPath;
        static Socket Dial(int port)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                s.Connect(IPAddress.Loopback, port);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }
        Socket socket;
        try
        {
            socket = netns.Length > 0
                ? await NamespaceRunner.RunInAsync(netns, NamespaceTypes.Network, () => Dial(port)).ConfigureAwait(false)
                : Dial(port);
        }
        catch (SocketException e)
        {
            throw new HullException(ErrorKind.Unavailable, $"cannot connect to 127.0.0.1:{port} in pod \"{sandboxId}\": {e.Message}", e);
        }
        return new PodConnection(new NetworkStream(socket, ownsSocket: true), () =>
        {
            try
            {
                socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The connection is gone already: nothing left to close.
            }
            return ValueTask.CompletedTask;
        });
    }
}
