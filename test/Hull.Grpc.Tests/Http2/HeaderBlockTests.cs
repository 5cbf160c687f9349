using System.Diagnostics;
using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 3, CONTINUATION flood (CVE-2024-27316 class): a header block ends within a bounded number of
/// CONTINUATION frames, however small they are, and within RequestHeadersTimeout, however often they come.
/// </summary>
public class HeaderBlockTests
{
    [Fact]
    public async Task EmptyContinuationFramesCannotKeepAHeaderBlockOpen()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
            var flood = new List<byte>(RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.None, 1, block));
            for (int i = 0; i < 1000; i++) flood.AddRange(RawHttp2Client.FrameBytes(FrameType.Continuation, FrameFlags.None, 1, []));
            await client.SendRawAsync(flood.ToArray());
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Contains("CONTINUATION", goAway.DebugData);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task HeaderBlockMustBeCompletedInTime()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { RequestHeadersTimeout = TimeSpan.FromMilliseconds(400) } });
        await using (var client = await server.ConnectReadyAsync())
        {
            var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
            var stopwatch = Stopwatch.StartNew();
            await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 1, block[..1]);
            // Trickling fragments does not extend the deadline.
            for (int i = 1; i < 4; i++)
            {
                await Task.Delay(150);
                try { await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, block[i..(i + 1)]); }
                catch (IOException) { break; } // a slow machine may already have closed the connection
            }
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
            Assert.Contains("not completed within 0.4 s", goAway.DebugData);
            Assert.InRange(stopwatch.ElapsedMilliseconds, 350, 5000);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task HeaderBlocksInUpToMaxContinuationFramesWork()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxContinuationFrames = 3 } });
        await using var client = await server.ConnectReadyAsync();
        var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
        await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 1, block[..4]);
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, block[4..8]);
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, []);
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.EndHeaders, 1, block[8..]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, RawHttp2Client.GrpcBody(new VersionRequest { Version = "three" }));
        Assert.Equal("three", (await client.ReadResponseAsync(1)).Message<VersionResponse>().Version);

        block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
        await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 3, block[..4]);
        for (int i = 0; i < 4; i++) await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 3, []);
        await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
    }
}
