using System.Net.Sockets;
using Hull.Grpc.Tests.Ttrpc.Echo;
using Hull.Grpc.Ttrpc;

namespace Hull.Grpc.Tests.Ttrpc;

using global::Grpc.Core;

/// <summary>A connected pair of unix stream sockets, as NetworkStreams.</summary>
internal static class SocketPairs
{
    public static async Task<(NetworkStream A, NetworkStream B)> CreateAsync()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hull-ttrpc-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var accepting = listener.AcceptAsync();
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var server = await accepting;
        File.Delete(path);
        return (new NetworkStream(client, ownsSocket: true), new NetworkStream(server, ownsSocket: true));
    }
}

/// <summary>The echo service: says back what it got, with the call's metadata and deadline.</summary>
internal sealed class EchoService : Echo.Echo.EchoBase
{
    public TaskCompletionSource<bool> CancelledCall { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override async Task<EchoReply> Say(EchoRequest request, ServerCallContext context)
    {
        if (request.DelayMs != 0)
        {
            try
            {
                await Task.Delay(request.DelayMs, context.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                CancelledCall.TrySetResult(true);
                throw;
            }
        }
        if (request.FailWith != "") throw new RpcException(new Status(StatusCode.FailedPrecondition, request.FailWith));
        var reply = new EchoReply { Text = request.Text, BlobLength = request.Blob.Length };
        foreach (var entry in context.RequestHeaders) reply.Metadata[entry.Key] = entry.Value;
        if (context.Deadline != DateTime.MaxValue) reply.TimeoutMs = (long)(context.Deadline - DateTime.UtcNow).TotalMilliseconds;
        return reply;
    }
}

/// <summary>A ttrpc server serving the echo service on one end of a socket pair, a client on the other.</summary>
internal sealed class EchoPair : IAsyncDisposable
{
    public required TtrpcClient Client { get; init; }
    public required Echo.Echo.EchoClient Stub { get; init; }
    public required EchoService Service { get; init; }
    public required Task Serving { get; init; }
    public required Stream ServerEnd { get; init; }

    public static async Task<EchoPair> StartAsync()
    {
        var (a, b) = await SocketPairs.CreateAsync();
        var service = new EchoService();
        var server = new TtrpcServer();
        Echo.Echo.BindService(server, service);
        var serving = server.ServeAsync(b);
        var client = new TtrpcClient(a);
        return new EchoPair { Client = client, Stub = new Echo.Echo.EchoClient(client), Service = service, Serving = serving, ServerEnd = b };
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await ServerEnd.DisposeAsync();
        await Serving.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

/// <summary>Speaks raw ttrpc frames, to send what a well-behaved peer never would.</summary>
internal sealed class RawPeer(Stream stream)
{
    public Stream Stream { get; } = stream;

    public async Task SendAsync(uint length, uint streamId, byte type, byte flags, byte[] data)
    {
        var header = new byte[TtrpcProtocol.HeaderLength];
        new TtrpcFrameHeader(length, streamId, (TtrpcMessageType)type, flags).Write(header);
        await Stream.WriteAsync(header);
        await Stream.WriteAsync(data);
        await Stream.FlushAsync();
    }

    public Task SendAsync(uint streamId, TtrpcMessageType type, byte[] data) => SendAsync((uint)data.Length, streamId, (byte)type, 0, data);

    public async Task<(TtrpcFrameHeader Header, byte[] Data)> ReceiveAsync()
    {
        var header = new byte[TtrpcProtocol.HeaderLength];
        await Stream.ReadExactlyAsync(header).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var h = TtrpcFrameHeader.Read(header);
        var data = new byte[h.Length];
        await Stream.ReadExactlyAsync(data).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return (h, data);
    }
}
