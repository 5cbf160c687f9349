using System.Buffers.Binary;
using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 4: SETTINGS and PING floods. A SETTINGS frame is cheap whatever it holds (bounded parameters, one
/// walk of the streams), SETTINGS frames are rate-limited, and PINGs follow grpc-go's keepalive enforcement.
/// </summary>
public class ControlFrameFloodTests
{
    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE <paramref name="count"/> times, alternating 65535 and 65536, ending on <paramref name="last"/>.</summary>
    private static byte[] InitialWindowSizes(int count, uint last = 65_536)
    {
        var payload = new byte[count * 6];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(i * 6), (ushort)SettingId.InitialWindowSize);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(i * 6 + 2), (count - 1 - i) % 2 == 0 ? last : last ^ 1);
        }
        return payload;
    }

    [Fact]
    public async Task SettingsFrameWithTooManyParametersIsEnhanceYourCalm()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Settings, FrameFlags.None, 0, InitialWindowSizes(2730)); // a full 16 KiB frame
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Contains("2730 parameters", goAway.DebugData);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task InitialWindowSizeChangesCostOneWalkOfTheStreamsPerFrame()
    {
        // 1000 open streams, then 100 full SETTINGS frames each changing INITIAL_WINDOW_SIZE 2730 times: one walk of
        // the streams per frame is 100,000 window updates; one per parameter was 273 million (seconds of CPU).
        await using var server = TestServer.Start(new() { Http2 = new() { MaxSettingsPerFrame = 3000, SettingsRate = new(Burst: 1000, PerSecond: 10) } });
        await using var client = await server.ConnectReadyAsync();
        var open = new List<byte>();
        for (int id = 1; id < 2000; id += 2)
            open.AddRange(RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.EndHeaders, id, client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath))));
        await client.SendRawAsync(open.ToArray());
        await client.PingRoundTripAsync();
        // Each frame ends on the other value, so each one changes every stream's window.
        byte[][] frames = [RawHttp2Client.FrameBytes(FrameType.Settings, FrameFlags.None, 0, InitialWindowSizes(2730, 65_536)),
            RawHttp2Client.FrameBytes(FrameType.Settings, FrameFlags.None, 0, InitialWindowSizes(2730, 65_535))];
        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < 100; i++) await client.SendRawAsync(frames[i % 2]);
        await client.PingRoundTripAsync();
        // Milliseconds of work; the bound leaves room for a badly overloaded machine.
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"100 SETTINGS frames took {stopwatch.Elapsed}");
        Assert.Null(client.GoAway);
    }

    [Fact]
    public async Task InitialWindowSizeThatOverflowsMidFrameIsAFlowControlErrorEvenIfALaterValueIsFine()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendVersionAsync(1, "sleep:5000:mid");
            await server.Service.Signals("mid").Started.Task.WaitAsync(RawHttp2Client.Timeout);
            await client.SendWindowUpdateAsync(1, 0x7FFF_FFFF - 65_535); // stream 1's window is now 2^31-1
            await client.SendSettingsAsync((SettingId.InitialWindowSize, 70_000), (SettingId.InitialWindowSize, 65_535));
            await client.ExpectGoAwayAsync(Http2ErrorCode.FlowControlError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task SettingsFloodIsEnhanceYourCalm()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { SettingsRate = new(Burst: 20, PerSecond: 1) } });
        await using (var client = await server.ConnectReadyAsync())
        {
            var flood = new List<byte>();
            for (int i = 0; i < 50; i++) flood.AddRange(RawHttp2Client.FrameBytes(FrameType.Settings, FrameFlags.None, 0, InitialWindowSizes(1)));
            await client.SendRawAsync(flood.ToArray());
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Contains("SETTINGS frames", goAway.DebugData);
            Assert.InRange(client.Received.Count(f => f.Type == FrameType.Settings && f.Has(FrameFlags.Ack)), 1, 21);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task PingFloodIsTooManyPings()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            var flood = new List<byte>();
            for (int i = 0; i < 1000; i++) flood.AddRange(RawHttp2Client.FrameBytes(FrameType.Ping, FrameFlags.None, 0, new byte[8]));
            await client.SendRawAsync(flood.ToArray());
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Equal("too_many_pings", goAway.DebugData); // what grpc-go clients look for to slow their keepalive
            Assert.Equal(3, client.Received.Count(f => f.Type == FrameType.Ping && f.Has(FrameFlags.Ack))); // grpc-go allows 2 strikes
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task PingsAfterResponsesAreNeverStrikes()
    {
        // grpc-go's BDP estimator pings after every burst of response data; that must never end the connection.
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        for (int i = 0; i < 20; i++)
        {
            int id = 1 + 2 * i;
            await client.SendVersionAsync(id, $"call{i}");
            Assert.Equal($"call{i}", (await client.ReadResponseAsync(id)).Message<VersionResponse>().Version);
            await client.PingRoundTripAsync((ulong)i);
        }
        Assert.Null(client.GoAway);
    }
}
