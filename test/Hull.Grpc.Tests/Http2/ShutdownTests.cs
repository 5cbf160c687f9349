using System.Buffers.Binary;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Graceful shutdown: GOAWAY, draining in-flight calls, and bounded stops.</summary>
public class ShutdownTests
{
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
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 4000);
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
        Assert.InRange(stopwatch.ElapsedMilliseconds, 150, 4000);
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
        await server.Server.StopAsync(TimeSpan.FromSeconds(30)).WaitAsync(RawHttp2Client.Timeout);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 4000);
        await a.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        await b.ExpectGoAwayAsync(Http2ErrorCode.NoError);
        await server.DisposeAsync();
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
        await Task.WhenAny(stop, Task.Delay(TimeSpan.FromSeconds(8)));
        Assert.True(stop.IsCompleted, "StopAsync hangs while a peer does not read");
        Assert.InRange(stopwatch.ElapsedMilliseconds, 0, 4500);
        await server.DisposeAsync();
    }
}
