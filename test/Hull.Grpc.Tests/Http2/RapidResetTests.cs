using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 2, rapid reset (CVE-2023-44487): a reset stream never starts a handler it has not started yet,
/// the handlers of reset streams still count until they return, and resets are rate-limited.
/// </summary>
public class RapidResetTests
{
    /// <summary>HEADERS + DATA(END_STREAM) + RST_STREAM for each stream, all in one write.</summary>
    private static byte[] CallsResetAtOnce(RawHttp2Client client, int firstStreamId, int count)
    {
        var bytes = new List<byte>();
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = "reset" });
        for (int i = 0; i < count; i++)
        {
            int id = firstStreamId + 2 * i;
            var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
            bytes.AddRange(RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.EndHeaders, id, block));
            bytes.AddRange(RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.EndStream, id, body));
            bytes.AddRange(RawHttp2Client.FrameBytes(FrameType.RstStream, FrameFlags.None, id, [0, 0, 0, (byte)Http2ErrorCode.Cancel]));
        }
        return bytes.ToArray();
    }

    [Fact]
    public async Task StreamsResetInTheSameReadAsTheirHeadersNeverRunTheirHandlers()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxConcurrentStreams = 10 } });
        await using var client = await server.ConnectReadyAsync();
        await client.SendRawAsync(CallsResetAtOnce(client, 1, 100)); // about 10 KiB: one read, or a few
        await client.PingRoundTripAsync();
        await client.SendVersionAsync(201, "after");
        Assert.Equal("after", (await client.ReadResponseAsync(201)).Message<VersionResponse>().Version);
        // Only a pair split across two reads can start its handler before its reset is seen.
        Assert.InRange(server.Service.Calls, 1, 5);
        Assert.Null(client.GoAway);
    }

    [Fact]
    public async Task ResetFloodEndsTheConnectionWithEnhanceYourCalm()
    {
        var log = new ListLogger();
        await using var server = TestServer.Start(new() { Http2 = new() { StreamResetRate = new(Burst: 50, PerSecond: 1) } }, logger: log);
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendRawAsync(CallsResetAtOnce(client, 1, 100));
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Contains("reset", goAway.DebugData);
        }
        await server.AssertServesAsync();
        // One line for the connection, not one per reset.
        var warning = Assert.Single(log.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
        Assert.Contains("EnhanceYourCalm", warning.Message);
        Assert.Contains("127.0.0.1", warning.Message);
    }

    [Fact]
    public async Task ResetsWithinTheRateAreFine()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { StreamResetRate = new(Burst: 50, PerSecond: 1) } });
        await using var client = await server.ConnectReadyAsync();
        await client.SendRawAsync(CallsResetAtOnce(client, 1, 45));
        await client.PingRoundTripAsync();
        await client.SendVersionAsync(91, "fine");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(91)).GrpcStatus);
    }

    [Fact]
    public async Task HandlersOfResetStreamsHoldTheirSlotUntilTheyReturn()
    {
        // With MaxConcurrentStreams 2, at most 4 handlers may run (Kestrel's twice the limit), reset streams or not.
        await using var server = TestServer.Start(new() { Http2 = new() { MaxConcurrentStreams = 2 } });
        await using var client = await server.ConnectReadyAsync();
        for (int id = 1; id <= 7; id += 2)
        {
            await client.SendVersionAsync(id, $"hang:4000:z{id}"); // ignores cancellation
            await server.Service.Signals($"z{id}").Started.Task.WaitAsync(RawHttp2Client.Timeout);
            await client.SendRstStreamAsync(id, Http2ErrorCode.Cancel);
        }
        await client.PingRoundTripAsync();
        // No stream is open as far as the protocol goes, but four handlers still run: the fifth stream is refused.
        await client.SendVersionAsync(9, "one too many");
        await client.ExpectRstStreamAsync(9, Http2ErrorCode.EnhanceYourCalm);
        for (int id = 1; id <= 7; id += 2) await server.Service.Signals($"z{id}").Finished.Task.WaitAsync(RawHttp2Client.Timeout);
        // Their slots come back as the handlers return (just after Finished).
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        for (int id = 11; ; id += 2)
        {
            await client.SendVersionAsync(id, "room again");
            var result = await client.ReadResponseAsync(id);
            if (result.GrpcStatus == StatusCode.OK) break;
            Assert.Equal(Http2ErrorCode.EnhanceYourCalm, result.ResetCode);
            Assert.True(DateTime.UtcNow < deadline, "the slots of returned handlers never came back");
            await Task.Delay(20);
        }
    }
}
