using System.Diagnostics;
using System.Net.Sockets;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// The blocking socket transport: a connection's receiving thread also runs the read loop and the handlers of each
/// read, so it must hand over when a handler holds it, and must stop taking input the read loop does not ask for.
/// </summary>
public class SocketTransportTests
{
    [Fact]
    public async Task Handlers_that_block_their_thread_do_not_hold_up_the_connection()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        // Each blocking call arrives alone, so its handler is the one the receiving thread runs inline.
        await client.SendVersionAsync(1, "block:4000:first");
        await server.Service.Signals("first").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendVersionAsync(3, "block:4000:second");
        await server.Service.Signals("second").Started.Task.WaitAsync(TimeSpan.FromSeconds(2));

        var stopwatch = Stopwatch.StartNew();
        await client.SendVersionAsync(5, "quick");
        var quick = await client.ReadResponseAsync(5, TimeSpan.FromSeconds(2));
        Assert.Equal("quick", quick.Message<VersionResponse>().Version);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"answered after {stopwatch.Elapsed}");
        Assert.False(server.Service.Signals("second").Finished.Task.IsCompleted, "the blocking calls ended before the quick one was answered");

        foreach (int id in new[] { 1, 3 })
            Assert.Equal("blocked", (await client.ReadResponseAsync(id)).Message<VersionResponse>().RuntimeName);
        await client.SendVersionAsync(7, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(7)).GrpcStatus);
    }

    [Fact]
    public async Task Handlers_behind_a_blocking_one_in_the_same_read_still_start()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        // One write: the server reads both requests at once, and its receiving thread runs their handlers in turn.
        await client.SendRawAsync([.. VersionRequestBytes(client, 1, "block:4000:held"), .. VersionRequestBytes(client, 3, "behind")]);
        var behind = await client.ReadResponseAsync(3, TimeSpan.FromSeconds(2));
        Assert.Equal("behind", behind.Message<VersionResponse>().Version);
        Assert.False(server.Service.Signals("held").Finished.Task.IsCompleted, "the blocking call ended before the one behind it was answered");
        Assert.Equal("blocked", (await client.ReadResponseAsync(1)).Message<VersionResponse>().RuntimeName);
    }

    [Fact]
    public async Task Input_the_reader_does_not_ask_for_stops_being_received()
    {
        var (ours, peer) = UnixPair();
        using var transport = new SocketTransport(ours, Http2Limits.DefaultMaxFrameSize);
        transport.Start();
        using (peer)
        {
            // Far more than the transport's backlog (1 MiB) plus both socket buffers: the sender must stall.
            var data = new byte[32 << 20];
            var sending = peer.SendAsync(data, SocketFlags.None);
            var first = await transport.Input.ReadAsync().AsTask().WaitAsync(RawHttp2Client.Timeout);
            transport.Input.AdvanceTo(first.Buffer.Start); // nothing consumed, and the reader does not ask again
            await Task.Delay(1000);
            Assert.False(sending.IsCompleted, "the transport took 32 MiB the reader never asked for");

            // Once the reader asks again, the rest flows.
            long received = 0;
            var drain = Task.Run(async () =>
            {
                while (received < data.Length)
                {
                    var result = await transport.Input.ReadAsync().AsTask().WaitAsync(RawHttp2Client.Timeout);
                    received = result.Buffer.Length;
                    transport.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                    if (result.IsCompleted) break;
                }
            });
            Assert.Equal(data.Length, await sending.WaitAsync(TimeSpan.FromSeconds(20)));
            await drain.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(data.Length, received);
        }
    }

    private static byte[] VersionRequestBytes(RawHttp2Client client, int streamId, string version) =>
    [
        .. RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.EndHeaders, streamId,
            client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath))),
        .. RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.EndStream, streamId, RawHttp2Client.GrpcBody(new VersionRequest { Version = version })),
    ];

    private static (Socket Ours, Socket Peer) UnixPair()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hull-transport-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var peer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            peer.Connect(new UnixDomainSocketEndPoint(path));
            // Accepted synchronously: the transport's socket must never have seen an async call.
            var ours = listener.Accept();
            return (ours, peer);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
