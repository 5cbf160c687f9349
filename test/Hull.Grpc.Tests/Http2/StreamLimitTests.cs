using Hull.Api.Cri;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>
/// Issue 13 item 5, per stream: a request body that stops arriving, a client that grants no window for the
/// response, and a content-length that does not match the DATA.
/// </summary>
public class StreamLimitTests
{
    [Fact]
    public async Task RequestBodyThatStopsArrivingEndsTheCall()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { RequestBodyTimeout = TimeSpan.FromMilliseconds(300), MaxConcurrentStreams = 1 } });
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, [0, 0, 0]); // part of a message prefix, then nothing
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
        Assert.Contains("made no progress for 0.3 s", result.GrpcMessageRaw);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.NoError); // and the client is told to stop sending it
        // Its slot is free again (MaxConcurrentStreams is 1).
        await client.SendVersionAsync(3, "next");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task RequestBodyThatKeepsComingIsNotTimedOut()
    {
        // A frame every 0.1 s for 4 s against a 3 s limit: a busy machine may stall this process for a second or
        // more, so the margin is wide.
        await using var server = TestServer.Start(new() { Http2 = new() { RequestBodyTimeout = TimeSpan.FromSeconds(3) } });
        await using var client = await server.ConnectReadyAsync();
        string version = new('s', 35);
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = version });
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        for (int i = 0; i < body.Length; i++)
        {
            await client.WriteFrameAsync(FrameType.Data, i + 1 == body.Length ? FrameFlags.EndStream : FrameFlags.None, 1, body[i..(i + 1)]);
            await Task.Delay(100);
        }
        var result = await client.ReadResponseAsync(1);
        Assert.True(result.GrpcStatus == StatusCode.OK, $"{result.GrpcStatus} {result.GrpcMessageRaw}: {client.Describe()}");
        Assert.Equal(version, result.Message<VersionResponse>().Version);
    }

    [Fact]
    public async Task ResponseThatGetsNoWindowIsResetAndFreesItsStream()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { ZeroWindowTimeout = TimeSpan.FromMilliseconds(300), MaxConcurrentStreams = 1 } });
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 0));
        client.AutoWindowUpdate = false;
        await client.SendVersionAsync(1, "no window");
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.Cancel);
        Assert.DoesNotContain(client.Received, f => f.StreamId == 1 && f.Type is FrameType.Data or FrameType.Headers);
        // The stream's slot is free again; with window granted (in the same write, so no stall can come between) the
        // next call is answered.
        var call = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
        await client.SendRawAsync([
            .. RawHttp2Client.FrameBytes(FrameType.Headers, FrameFlags.EndHeaders, 3, call),
            .. RawHttp2Client.FrameBytes(FrameType.Data, FrameFlags.EndStream, 3, RawHttp2Client.GrpcBody(new VersionRequest { Version = "window" })),
            .. RawHttp2Client.FrameBytes(FrameType.WindowUpdate, FrameFlags.None, 3, [0, 0, 0x10, 0])]);
        var next = await client.ReadResponseAsync(3);
        Assert.True(next.GrpcStatus == StatusCode.OK, client.Describe());
        Assert.Equal("window", next.Message<VersionResponse>().Version);
    }

    public static TheoryData<string, long, int, bool> ContentLengthMismatches => new()
    {
        { "more DATA than announced", 3, 20, false },
        { "less DATA than announced", 100, 20, false },
        { "announced, then no DATA at all", 10, 0, false },
        { "less DATA, ended by trailers", 100, 20, true },
    };

    [Theory]
    [MemberData(nameof(ContentLengthMismatches))]
    public async Task ContentLengthThatDoesNotMatchTheDataIsAStreamProtocolError(string why, long contentLength, int dataLength, bool trailers)
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("content-length", contentLength.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await client.SendHeadersAsync(1, headers, endStream: dataLength == 0);
        if (dataLength > 0) await client.WriteFrameAsync(FrameType.Data, trailers ? FrameFlags.None : FrameFlags.EndStream, 1, new byte[dataLength]);
        if (trailers) await client.SendHeadersAsync(1, [new("x-trailer", "t")], endStream: true);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        Assert.Equal(0, server.Service.Calls);
        await client.SendVersionAsync(3, why); // a stream error: the connection goes on
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("12a")]
    [InlineData("")]
    public async Task MalformedContentLengthIsAStreamProtocolError(string value)
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("content-length", value)), endStream: false);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
    }

    [Fact]
    public async Task MatchingContentLengthIsServed()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = "exact" });
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("content-length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await client.SendHeadersAsync(1, headers, endStream: false);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, body[..3]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [5, .. body[3..], 0, 0, 0, 0, 0]); // padding does not count
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, []);
        Assert.Equal("exact", (await client.ReadResponseAsync(1)).Message<VersionResponse>().Version);
    }
}
