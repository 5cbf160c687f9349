using System.Buffers.Binary;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Keepalive PINGs (Http2ServerOptions.KeepAliveInterval / KeepAliveTimeout).</summary>
public class KeepAliveTests
{
    [Fact]
    public async Task KeepAlivePingIsSentWhenIdleAndAnsweringKeepsTheConnection()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromSeconds(2) } });
        await using var client = await server.ConnectReadyAsync();
        client.AutoPingAck = true;
        var frames = await client.ReadForAsync(TimeSpan.FromMilliseconds(2000));
        var pings = frames.Where(f => f.Type == FrameType.Ping && !f.Has(FrameFlags.Ack)).ToList();
        Assert.True(pings.Count is >= 2 and <= 10, $"{pings.Count} keepalive PINGs in 2 s: {client.Describe()}");
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
            Assert.InRange(closedAt - pingAt, 250, 4000);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task KeepAliveAnswerWithWrongPayloadDoesNotCount()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromSeconds(1) } });
        await using var client = await server.ConnectReadyAsync();
        Frame? ping;
        do ping = await client.ReadFrameAsync();
        while (ping is not null && ping.Type != FrameType.Ping);
        Assert.NotNull(ping);
        try { await client.SendPingAsync(BinaryPrimitives.ReadUInt64BigEndian(ping.Payload) + 1, ack: true); }
        catch (IOException) { } // on a badly overloaded machine the server may already have given up
        await client.ExpectGoAwayAsync(Http2ErrorCode.NoError);
    }
}
