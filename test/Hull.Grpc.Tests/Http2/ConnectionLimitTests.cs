using System.Diagnostics;
using System.Net.Sockets;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 5, connection-wide limits: how many connections, how long before the client speaks HTTP/2, when
/// keepalive starts, and how long a write may wait for a client that stopped reading.
/// </summary>
public class ConnectionLimitTests
{
    [Fact]
    public async Task ConnectionsBeyondTheLimitAreRefusedWithEnhanceYourCalm()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxConnections = 2 } });
        var first = await server.ConnectReadyAsync();
        await using var second = await server.ConnectReadyAsync();
        await using (var third = await server.ConnectAsync())
        {
            var settings = await third.ReadFrameAsync();
            Assert.Equal(FrameType.Settings, settings?.Type);
            await third.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        }
        Assert.Equal(2, server.Server.ConnectionCount);

        await first.DisposeAsync();
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        while (server.Server.ConnectionCount > 1) { Assert.True(DateTime.UtcNow < deadline); await Task.Delay(10); }
        await server.AssertServesAsync();
    }

    [Theory]
    [InlineData("")]
    [InlineData("PRI * HTTP/2.0\r\n")]
    public async Task ClientThatDoesNotFinishThePrefaceIsDisconnected(string partialPreface)
    {
        await using var server = TestServer.Start(new() { Http2 = new() { PrefaceTimeout = TimeSpan.FromMilliseconds(300) } });
        var stopwatch = Stopwatch.StartNew(); // before connecting: the server's clock cannot start earlier
        await using var client = await server.ConnectAsync();
        if (partialPreface.Length > 0) await client.SendRawAsync(System.Text.Encoding.ASCII.GetBytes(partialPreface));
        await client.ExpectClosedAsync();
        Assert.InRange(stopwatch.ElapsedMilliseconds, 250, 5000);
        Assert.DoesNotContain(client.Received, f => f.Type == FrameType.Ping);
    }

    [Fact]
    public async Task ClientThatSendsThePrefaceButNoSettingsIsDisconnected()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { PrefaceTimeout = TimeSpan.FromMilliseconds(300) } });
        var stopwatch = Stopwatch.StartNew();
        await using var client = await server.ConnectAsync();
        await client.SendPrefaceAsync();
        await client.ExpectClosedAsync();
        Assert.InRange(stopwatch.ElapsedMilliseconds, 250, 5000);
    }

    [Fact]
    public async Task KeepAliveStartsOnlyAfterThePreface()
    {
        // A PING before the server's SETTINGS would break the protocol; a silent client is the preface timeout's job.
        await using var server = TestServer.Start(new() { Http2 = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(50), KeepAliveTimeout = TimeSpan.FromSeconds(5) } });
        await using var client = await server.ConnectAsync();
        await Task.Delay(400);
        await client.HandshakeAsync(); // asserts that the first frame from the server is its SETTINGS
        client.AutoPingAck = true;
        Frame? ping; // and then it runs
        do ping = await client.ReadFrameAsync();
        while (ping is not null && !(ping.Type == FrameType.Ping && !ping.Has(FrameFlags.Ack)));
        Assert.NotNull(ping);
    }

    [Fact]
    public async Task ClientThatStopsReadingIsDisconnectedAfterTheWriteTimeout()
    {
        var log = new ListLogger();
        await using var server = TestServer.Start(new() { Http2 = new() { WriteTimeout = TimeSpan.FromMilliseconds(500) } }, logger: log);
        await using (var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 0x7FFF_FFFF)))
        {
            await client.SendWindowUpdateAsync(0, 0x7FFF_FFFF - 65_535);
            client.StopReading();
            // 2 × 12 MB: far more than the socket buffers hold, so the server's writes block.
            await client.SendVersionAsync(1, "big:12000000");
            await client.SendVersionAsync(3, "big:12000000");
            var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
            while (server.Server.ConnectionCount > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the connection of a client that stopped reading is still open");
                await Task.Delay(20);
            }
        }
        Assert.Contains(log.Entries, e => e.Message.Contains("read nothing for 0.5 s"));
        await server.AssertServesAsync();
    }
}
