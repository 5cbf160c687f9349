using System.Net.Sockets;

namespace Hull.Grpc.Client;

/// <summary>
/// The HTTP handler for a Grpc.Net.Client channel to a unix socket (GrpcChannelOptions.HttpHandler, with any
/// http:// address: it only sets :authority). One HTTP/2 connection, kept while idle, as the kubelet's client does.
/// </summary>
public static class UnixSocketHttpHandler
{
    public static SocketsHttpHandler Create(string path) => new()
    {
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                throw new IOException(File.Exists(path) ? $"connect to {path}: {e.Message}" : $"socket {path} does not exist", e);
            }
        },
        EnableMultipleHttp2Connections = false,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        UseProxy = false,
        AllowAutoRedirect = false,
    };
}
