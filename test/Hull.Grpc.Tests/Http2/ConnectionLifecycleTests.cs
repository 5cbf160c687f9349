using System.Buffers.Binary;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Stream concurrency and peers that vanish or go away.</summary>
public class ConnectionLifecycleTests
{
    [Fact]
    public async Task StreamsBeyondMaxConcurrentStreamsAreRefused()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxConcurrentStreams = 4 } });
        await using var client = await server.ConnectReadyAsync();
        Assert.Equal(4u, client.ServerSettings[SettingId.MaxConcurrentStreams]);
        for (int i = 0; i < 4; i++) await client.SendVersionAsync(1 + 2 * i, $"gate:flood{i}");
        for (int i = 0; i < 4; i++) await server.Service.Signals($"flood{i}").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        for (int id = 9; id <= 15; id += 2) await client.SendVersionAsync(id, "refused");
        for (int id = 9; id <= 15; id += 2) await client.ExpectRstStreamAsync(id, Http2ErrorCode.RefusedStream);
        for (int i = 0; i < 4; i++) server.Service.Signals($"flood{i}").Release.TrySetResult();
        for (int id = 1; id <= 7; id += 2)
        {
            var response = await client.ReadResponseAsync(id);
            Assert.Equal(StatusCode.OK, response.GrpcStatus);
            Assert.Equal("released", response.Message<VersionResponse>().RuntimeName);
        }
        Assert.Equal(4, server.Service.Calls);
        // Capacity is back once they finished.
        await client.SendVersionAsync(17, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(17)).GrpcStatus);
    }

    [Fact]
    public async Task ClientDisconnectMidCallCancelsTheHandler()
    {
        await using var server = TestServer.Start();
        var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:30000:gone");
        await client.SendVersionAsync(3, "sleep:30000:gone2");
        await server.Service.Signals("gone").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await server.Service.Signals("gone2").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        client.Abort();
        await server.Service.Signals("gone").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await server.Service.Signals("gone2").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await server.AssertServesAsync();
        await client.DisposeAsync();
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        while (server.Server.ConnectionCount > 0 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(0, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task ClientHalfCloseMidCallEndsTheConnection()
    {
        await using var server = TestServer.Start();
        var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:30000:half");
        await server.Service.Signals("half").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.DisposeAsync(); // FIN without RST
        await server.Service.Signals("half").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task ClientGoAwayStopsNewStreamsButFinishesOpenOnes()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:200:cgo");
        await server.Service.Signals("cgo").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.WriteFrameAsync(FrameType.GoAway, FrameFlags.None, 0, new byte[8]);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        await client.PingRoundTripAsync();
    }

    [Fact]
    public async Task ManyConnectionsAtOnceAreServed()
    {
        await using var server = TestServer.Start();
        var clients = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => server.ConnectReadyAsync()));
        try
        {
            await Task.WhenAll(clients.Select(async (c, i) =>
            {
                await c.SendVersionAsync(1, $"conn{i}");
                var response = await c.ReadResponseAsync(1);
                Assert.Equal($"conn{i}", response.Message<VersionResponse>().Version);
            })).WaitAsync(RawHttp2Client.Timeout);
            Assert.Equal(20, server.Server.ConnectionCount);
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }
}
