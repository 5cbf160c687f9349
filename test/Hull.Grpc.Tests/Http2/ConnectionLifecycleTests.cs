using System.Buffers.Binary;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Stream concurrency, shutdown, keepalive and peers that vanish.</summary>
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
    public async Task GracefulShutdownLetsInFlightCallsFinish()
    {
        var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "gate:drain");
        await client.SendVersionAsync(3, "gate:drain2");
        await server.Service.Signals("drain").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await server.Service.Signals("drain2").Started.Task.WaitAsync(RawHttp2Client.Timeout);

        var stopwatch = Stopwatch.StartNew();
        var stop = server.Server.StopAsync(TimeSpan.FromSeconds(5));
        var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.NoError, thenClosed: false);
        Assert.Equal(3, goAway.LastStreamId);
        Assert.False(client.Result(1).Done, "GOAWAY must come before the in-flight responses");
        // A stream opened after GOAWAY is not processed.
        await client.SendVersionAsync(5, "too-late");

        await client.PingRoundTripAsync(); // the connection still works while draining
        Assert.False(stop.IsCompleted);
        server.Service.Signals("drain").Release.TrySetResult();
        var r1 = await client.ReadResponseAsync(1);
        Assert.False(stop.IsCompleted);
        server.Service.Signals("drain2").Release.TrySetResult();
        var r3 = await client.ReadResponseAsync(3);
        Assert.Equal(StatusCode.OK, r1.GrpcStatus);
        Assert.Equal("released", r1.Message<VersionResponse>().RuntimeName);
        Assert.Equal(StatusCode.OK, r3.GrpcStatus);
        await client.ExpectClosedAsync();
        await stop.WaitAsync(RawHttp2Client.Timeout);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 3000);
        Assert.False(client.Result(5).Done);
        Assert.Equal(2, server.Service.Calls);
        Assert.False(server.Service.Signals("drain").Cancelled.Task.IsCompleted);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task ShutdownDrainTimeoutCancelsCallsThatDoNotFinish()
    {
        var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:30000:stuck");
        await server.Service.Signals("stuck").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        var stopwatch = Stopwatch.StartNew();
        await server.Server.StopAsync(TimeSpan.FromMilliseconds(200)).WaitAsync(RawHttp2Client.Timeout);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 150, 3000);
        await server.Service.Signals("stuck").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task ShutdownWithIdleConnectionsIsImmediate()
    {
        var server = TestServer.Start();
        await using var a = await server.ConnectReadyAsync();
        await using var b = await server.ConnectReadyAsync();
        await a.PingRoundTripAsync();
        await b.PingRoundTripAsync();
        var stopwatch = Stopwatch.StartNew();
        await server.Server.StopAsync(TimeSpan.FromSeconds(10)).WaitAsync(RawHttp2Client.Timeout);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 2000);
        await a.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        await b.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task KeepAlivePingIsSentWhenIdleAndAnsweringKeepsTheConnection()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromSeconds(2) } });
        await using var client = await server.ConnectReadyAsync();
        client.AutoPingAck = true;
        var frames = await client.ReadForAsync(TimeSpan.FromMilliseconds(1500));
        var pings = frames.Where(f => f.Type == FrameType.Ping && !f.Has(FrameFlags.Ack)).ToList();
        Assert.True(pings.Count is >= 2 and <= 10, $"{pings.Count} keepalive PINGs in 1.5 s: {client.Describe()}");
        Assert.All(pings, p => Assert.Equal(8, p.Payload.Length));
        Assert.Null(client.GoAway);
        await client.SendVersionAsync(1, "alive");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(1)).GrpcStatus);
    }

    [Fact]
    public async Task UnansweredKeepAlivePingClosesTheConnection()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromMilliseconds(300) } });
        await using (var client = await server.ConnectReadyAsync())
        {
            var stopwatch = Stopwatch.StartNew();
            Frame? ping;
            do ping = await client.ReadFrameAsync();
            while (ping is not null && ping.Type != FrameType.Ping);
            Assert.NotNull(ping);
            Assert.False(ping.Has(FrameFlags.Ack));
            long pingAt = stopwatch.ElapsedMilliseconds;
            await client.ExpectGoAwayAsync(Http2ErrorCode.NoError);
            long closedAt = stopwatch.ElapsedMilliseconds;
            Assert.InRange(closedAt - pingAt, 250, 2000);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task KeepAliveAnswerWithWrongPayloadDoesNotCount()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromMilliseconds(300) } });
        await using var client = await server.ConnectReadyAsync();
        Frame? ping;
        do ping = await client.ReadFrameAsync();
        while (ping is not null && ping.Type != FrameType.Ping);
        Assert.NotNull(ping);
        await client.SendPingAsync(BinaryPrimitives.ReadUInt64BigEndian(ping.Payload) + 1, ack: true);
        await client.ExpectGoAwayAsync(Http2ErrorCode.NoError);
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

    [Fact]
    public async Task SilentConnectionIsClosedByKeepAliveEvenBeforeThePreface()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(100), KeepAliveTimeout = TimeSpan.FromMilliseconds(200) } });
        await using var client = await server.ConnectAsync();
        await client.ExpectClosedAsync();
        Assert.True(client.Closed);
    }

    [Fact]
    public async Task ShutdownIsBoundedEvenWhenAPeerStopsReading()
    {
        var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 0x7FFF_FFFF));
        await client.SendWindowUpdateAsync(0, 0x7FFF_FFFF - 65_535);
        client.StopReading();
        // Far more than the socket buffers hold: the server's writer ends up blocked on a full socket.
        for (int i = 0; i < 8; i++) await client.SendVersionAsync(1 + 2 * i, "big:4000000");
        await Task.Delay(500);
        var stopwatch = Stopwatch.StartNew();
        var stop = server.Server.StopAsync(TimeSpan.FromMilliseconds(200));
        await Task.WhenAny(stop, Task.Delay(TimeSpan.FromSeconds(5)));
        Assert.True(stop.IsCompleted, "StopAsync hangs while a peer does not read");
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 3000);
        await server.DisposeAsync();
    }
}
