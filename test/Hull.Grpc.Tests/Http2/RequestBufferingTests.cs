using System.Buffers.Binary;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 1: request bodies the server buffers are bounded by flow control and a budget. The connection
/// window is granted again only as handlers consume bodies, so unfinished bodies on one connection cannot make the
/// server hold more than that window; across connections MaxBufferedRequestBytes caps the total.
/// </summary>
public class RequestBufferingTests
{
    /// <summary>
    /// Sends request DATA the way a well-behaved client does: never more than the windows the server granted,
    /// reading its WINDOW_UPDATEs as they come, until every body is sent or the server grants nothing more.
    /// </summary>
    private sealed class WindowedSender(RawHttp2Client client)
    {
        private readonly Dictionary<int, long> _sent = new();

        public long TotalSent => _sent.Values.Sum();

        private long Granted(int streamId) => streamId == 0
            ? Http2Limits.DefaultInitialWindowSize + Updates(0)
            : client.ServerSettings[SettingId.InitialWindowSize] + Updates(streamId);

        private long Updates(int streamId) => client.Received.Where(f => f.Type == FrameType.WindowUpdate && f.StreamId == streamId)
            .Sum(f => (long)BinaryPrimitives.ReadUInt32BigEndian(f.Payload));

        /// <summary>Sends up to <paramref name="bodyBytes"/> octets on each stream, without END_STREAM; returns when stalled or done.</summary>
        public async Task SendAsync(IReadOnlyList<int> streams, int bodyBytes)
        {
            while (true)
            {
                bool progress = false;
                foreach (int id in streams)
                {
                    long sent = _sent.GetValueOrDefault(id);
                    long chunk = Math.Min(Math.Min(16_384, bodyBytes - sent), Math.Min(Granted(id) - sent, Granted(0) - TotalSent));
                    if (chunk <= 0) continue;
                    await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, id, new byte[chunk]);
                    _sent[id] = sent + chunk;
                    progress = true;
                }
                if (progress) continue;
                if (streams.All(id => _sent.GetValueOrDefault(id) >= bodyBytes)) return;
                // Stalled: wait for window updates; none within a quiet spell means the server grants no more.
                var frames = await client.ReadUntilQuietAsync(TimeSpan.FromMilliseconds(300));
                if (!frames.Any(f => f.Type == FrameType.WindowUpdate)) return;
            }
        }
    }

    [Fact]
    public async Task UnfinishedBodiesOnOneConnectionStallAtTheConnectionWindow()
    {
        // 8 streams × 90,000 octets of body that never ends: before, the server granted window as DATA arrived and
        // took all 720,000; now it holds at most the 200,000 of its connection window.
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 100_000, Http2 = new() { ConnectionWindowSize = 200_000 } });
        await using var client = await server.ConnectReadyAsync();
        int[] streams = [1, 3, 5, 7, 9, 11, 13, 15];
        foreach (int id in streams) await client.SendHeadersAsync(id, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        var sender = new WindowedSender(client);
        await sender.SendAsync(streams, 90_000);
        Assert.InRange(sender.TotalSent, 150_000, 200_000);
        Assert.All(streams, id => Assert.Null(client.Result(id).ResetCode));

        // Handlers give the bodies back when their streams end: the window comes back.
        int before = client.Received.Count(f => f.Type == FrameType.WindowUpdate && f.StreamId == 0);
        foreach (int id in streams) await client.SendRstStreamAsync(id, Http2ErrorCode.Cancel);
        await client.PingRoundTripAsync();
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        while (client.Received.Count(f => f.Type == FrameType.WindowUpdate && f.StreamId == 0) == before)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no connection WINDOW_UPDATE after the bodies were dropped: {client.Describe()}");
            await client.ReadForAsync(TimeSpan.FromMilliseconds(50));
        }
        await client.SendVersionAsync(17, new string('v', 90_000));
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(17)).GrpcStatus);
    }

    [Fact]
    public async Task LargeRequestsStillFlowWhenTheConnectionWindowIsSmall()
    {
        // A request may be bigger than the configured connection window: the window is raised to fit one.
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 300_000, Http2 = new() { ConnectionWindowSize = 65_535, StreamWindowSize = 16_384 } });
        using var channel = server.Channel();
        for (int i = 0; i < 3; i++)
        {
            string big = new((char)('a' + i), 290_000);
            var response = await TestServer.VersionAsync(channel, new VersionRequest { Version = big })
                .WaitAsync(RawHttp2Client.Timeout);
            Assert.Equal(big, response.Version);
        }
    }

    [Fact]
    public async Task RequestOverTheLimitIsRefusedEvenWhenTheWindowIsNoLargerThanTheLimit()
    {
        // The window never lets a client stall one octet short of proving its request too large.
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 100_000, Http2 = new() { ConnectionWindowSize = 65_535 } });
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        await new WindowedSender(client).SendAsync([1], 150_000);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.ResourceExhausted, result.GrpcStatus);
    }

    [Fact]
    public async Task RequestBytesAcrossConnectionsAreBoundedByTheServerBudget()
    {
        await using var server = TestServer.Start(new GrpcServerOptions { Http2 = new() { MaxBufferedRequestBytes = 150_000 } });
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = new string('b', 99_990) });
        Assert.InRange(body.Length, 99_990, 100_010);
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath);

        // A holds 100,000 octets of an unfinished body...
        await using var a = await server.ConnectReadyAsync();
        await a.SendHeadersAsync(1, headers, endStream: false);
        await SendDataAsync(a, 1, body[..^10], endStream: false);
        await a.PingRoundTripAsync();
        // ...so B's request cannot be buffered whole: it fails with RESOURCE_EXHAUSTED instead of growing the heap.
        await using var b = await server.ConnectReadyAsync();
        await b.SendRequestAsync(1, headers, body);
        var refused = await b.ReadResponseAsync(1);
        Assert.Equal(StatusCode.ResourceExhausted, refused.GrpcStatus);
        Assert.Contains("150000 octets", refused.GrpcMessageRaw);

        // A finishes normally, and with its body consumed there is room again.
        await SendDataAsync(a, 1, body[^10..], endStream: true);
        Assert.Equal(StatusCode.OK, (await a.ReadResponseAsync(1)).GrpcStatus);
        await b.SendRequestAsync(3, headers, body);
        Assert.Equal(StatusCode.OK, (await b.ReadResponseAsync(3)).GrpcStatus);
    }

    private static async Task SendDataAsync(RawHttp2Client client, int streamId, byte[] data, bool endStream)
    {
        for (int offset = 0; offset < data.Length; offset += 16_384)
        {
            int chunk = Math.Min(16_384, data.Length - offset);
            bool last = offset + chunk == data.Length;
            await client.WriteFrameAsync(FrameType.Data, last && endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, data[offset..(offset + chunk)]);
        }
    }
}
