using System.Buffers.Binary;
using Hull.Api.Cri;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>gRPC over HTTP/2 as it appears on the wire, driven with hand-made frames.</summary>
public class GrpcWireTests
{
    private static async Task<StreamResult> CallAsync(TestServer server, IReadOnlyList<HeaderField> headers, byte[] body)
    {
        await using var client = await server.ConnectReadyAsync();
        await client.SendRequestAsync(1, headers, body);
        var result = await client.ReadResponseAsync(1);
        await client.PingRoundTripAsync(); // the connection survives whatever the call did
        return result;
    }

    private static Task<StreamResult> VersionAsync(TestServer server, string version, params HeaderField[] extra) =>
        CallAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, extra), RawHttp2Client.GrpcBody(new VersionRequest { Version = version }));

    [Fact]
    public async Task SuccessfulUnaryResponseIsHeadersDataTrailers()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "wire");
        var result = await client.ReadResponseAsync(1);
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal("application/grpc", result.Header("content-type"));
        Assert.NotNull(result.Trailers);
        Assert.Equal([new HeaderField("grpc-status", "0")], result.Trailers);
        Assert.Equal("wire", result.Message<VersionResponse>().Version);
        var frames = client.Received.Where(f => f.StreamId == 1).Select(f => f.Type).ToList();
        Assert.Equal([FrameType.Headers, FrameType.Data, FrameType.Headers], frames);
        Assert.True(client.Received.Last(f => f.StreamId == 1).Has(FrameFlags.EndStream));
    }

    [Fact]
    public async Task ErrorWithoutResponseIsTrailersOnly()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendUnaryAsync(1, "/runtime.v1.RuntimeService/NoSuchMethod", new VersionRequest());
        var result = await client.ReadResponseAsync(1);
        var frames = client.Received.Where(f => f.StreamId == 1).ToList();
        var only = Assert.Single(frames);
        Assert.Equal(FrameType.Headers, only.Type);
        Assert.True(only.Has(FrameFlags.EndStream));
        Assert.True(only.Has(FrameFlags.EndHeaders));
        Assert.Null(result.Trailers);
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal("application/grpc", result.Header("content-type"));
        Assert.Equal("12", result.Header("grpc-status"));
        Assert.Equal("unknown method /runtime.v1.RuntimeService/NoSuchMethod", result.Header("grpc-message"));
    }

    [Fact]
    public async Task StatusMessageIsPercentEncodedOnTheWire()
    {
        await using var server = TestServer.Start();
        var result = await VersionAsync(server, $"fail:{(int)StatusCode.InvalidArgument}:50% über\n");
        Assert.Equal(StatusCode.InvalidArgument, result.GrpcStatus);
        Assert.Equal("50%25 %C3%BCber%0A", result.GrpcMessageRaw);
    }

    [Fact]
    public async Task ErrorAfterStreamedMessagesComesInTheTrailers()
    {
        await using var server = TestServer.Start();
        var result = await CallAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.EventsPath, new HeaderField("x-count", "10"), new HeaderField("x-fail-after", "3")),
            RawHttp2Client.GrpcBody(new GetEventsRequest()));
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal(3, result.Messages().Count);
        Assert.NotNull(result.Trailers);
        Assert.Equal(StatusCode.Aborted, result.GrpcStatus);
        Assert.Equal("failed after 3 events", result.GrpcMessageRaw);
    }

    [Fact]
    public async Task ServerStreamingDeliversMessagesInOrder()
    {
        await using var server = TestServer.Start();
        var result = await CallAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.EventsPath, new HeaderField("x-count", "25")),
            RawHttp2Client.GrpcBody(new GetEventsRequest()));
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
        var events = result.Messages().Select(m => ContainerEventResponse.Parser.ParseFrom(m)).ToList();
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), events.Select(e => e.CreatedAt));
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("text/plain")]
    [InlineData("application/grpc-web")]
    [InlineData(null)]
    public async Task NonGrpcContentTypeIs415(string? contentType)
    {
        await using var server = TestServer.Start();
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath).Where(h => h.Name != "content-type").ToList();
        if (contentType is not null) headers.Add(new("content-type", contentType));
        var result = await CallAsync(server, headers, RawHttp2Client.GrpcBody(new VersionRequest { Version = "x" }));
        Assert.Equal("415", result.Header(":status"));
        Assert.True(result.Ended);
        Assert.Null(result.GrpcStatus);
        Assert.Equal(0, server.Service.Calls);
    }

    [Fact]
    public async Task GetIs415()
    {
        await using var server = TestServer.Start();
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath).Select(h => h.Name == ":method" ? new HeaderField(":method", "GET") : h).ToList();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, headers, endStream: true);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal("415", result.Header(":status"));
    }

    [Fact]
    public async Task NonGrpcRequestIsAnsweredOnceItEndsWithATextBody()
    {
        await using var server = TestServer.Start();
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath).Select(h => h.Name == "content-type" ? new HeaderField("content-type", "application/json") : h).ToList();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, headers, endStream: false);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, "{\"a\":"u8.ToArray());
        await client.PingRoundTripAsync();
        Assert.Null(client.Result(1).Headers); // like any HTTP server, it answers the whole request
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, "1}"u8.ToArray());
        var result = await client.ReadResponseAsync(1);
        Assert.Equal("415", result.Header(":status"));
        Assert.StartsWith("text/plain", result.Header("content-type"));
        Assert.Contains("application/grpc", System.Text.Encoding.UTF8.GetString(result.Data.ToArray()));
        Assert.Null(result.Trailers); // the last DATA frame ends the stream
        Assert.True(client.Received.Last(f => f.StreamId == 1).Has(FrameFlags.EndStream));
        Assert.Equal(0, server.Service.Calls);

        // HEAD gets the status alone.
        await client.SendHeadersAsync(3, headers.Select(h => h.Name == ":method" ? new HeaderField(":method", "HEAD") : h).ToList(), endStream: true);
        var head = await client.ReadResponseAsync(3);
        Assert.Equal("415", head.Header(":status"));
        Assert.Equal(0, head.Data.Length);
    }

    [Fact]
    public async Task AlternativeGrpcContentTypesAreAccepted()
    {
        await using var server = TestServer.Start();
        var headers = RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath).Select(h => h.Name == "content-type" ? new HeaderField("content-type", "application/grpc+proto") : h).ToList();
        var result = await CallAsync(server, headers, RawHttp2Client.GrpcBody(new VersionRequest { Version = "proto" }));
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
    }

    public static TheoryData<string, byte[], StatusCode> BadBodies()
    {
        var message = RawHttp2Client.GrpcBody(new VersionRequest { Version = "hello" });
        var longer = (byte[])message.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(1), (uint)(message.Length - 5 + 10));
        var shorter = (byte[])message.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(shorter.AsSpan(1), (uint)(message.Length - 5 - 2));
        var compressed = (byte[])message.Clone();
        compressed[0] = 1;
        var garbageFlag = (byte[])message.Clone();
        garbageFlag[0] = 0x80;
        return new()
        {
            { "prefix announcing more bytes than sent", longer, StatusCode.Internal },
            { "prefix announcing fewer bytes than sent", shorter, StatusCode.Internal },
            { "two messages on a unary call", [.. message, .. message], StatusCode.Internal },
            { "empty body", [], StatusCode.Internal },
            { "body shorter than a prefix", [0, 0, 0], StatusCode.Internal },
            { "compressed flag", compressed, StatusCode.Unimplemented },
            { "unknown flag bits", garbageFlag, StatusCode.Unimplemented },
            { "protobuf that does not parse", [0, 0, 0, 0, 3, 0x0A, 0x05, 0x61], StatusCode.Internal },
            { "length beyond the receive limit", [0, 0xFF, 0xFF, 0xFF, 0xFF], StatusCode.ResourceExhausted },
        };
    }

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task MalformedRequestBodiesFailTheCallNotTheConnection(string why, byte[] body, StatusCode expected)
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: body.Length == 0);
        if (body.Length > 0) await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, body);
        var result = await client.ReadResponseAsync(1);
        Assert.True(result.GrpcStatus == expected, $"{why}: expected {expected}, got {result.GrpcStatus} ({result.GrpcMessageRaw})");
        Assert.Equal(0, server.Service.Calls);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Theory]
    [InlineData("1x")]
    [InlineData("")]
    [InlineData("123456789S")]
    [InlineData("-5S")]
    public async Task MalformedTimeoutIsInternal(string timeout)
    {
        await using var server = TestServer.Start();
        var result = await VersionAsync(server, "x", new HeaderField("grpc-timeout", timeout));
        Assert.Equal(StatusCode.Internal, result.GrpcStatus);
        Assert.Contains("grpc-timeout", GrpcWire.DecodeMessage(result.GrpcMessageRaw!));
    }

    [Theory]
    [InlineData("99999999H")]
    [InlineData("99999999M")]
    [InlineData("100000M")] // about 69 days: beyond what a timer can wait
    [InlineData("71582M")] // just under the longest timer
    [InlineData("1H")]
    public async Task HugeButValidTimeoutsDoNotBreakTheCall(string timeout)
    {
        await using var server = TestServer.Start();
        var result = await VersionAsync(server, "far", new HeaderField("grpc-timeout", timeout));
        Assert.True(result.GrpcStatus == StatusCode.OK, $"grpc-timeout {timeout}: {(result.ResetCode is { } c ? "RST_STREAM " + c : result.GrpcStatus + " " + result.GrpcMessageRaw)}");
        Assert.Equal("far", result.Message<VersionResponse>().Version);
    }

    [Fact]
    public async Task ServerAnswersDeadlineExceededAtTheDeadlineWhileTheHandlerIgnoresIt()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        await client.SendVersionAsync(1, "hang:10000:wire-ignore", new HeaderField("grpc-timeout", "300m"));
        var result = await client.ReadResponseAsync(1);
        Assert.InRange(stopwatch.ElapsedMilliseconds, 250, 4000);
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
        Assert.Null(result.Trailers); // nothing was sent before: trailers-only
        Assert.False(server.Service.Signals("wire-ignore").Finished.Task.IsCompleted);
        // The client ended its side, the server its own: the stream is closed and the connection carries on.
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Theory]
    [InlineData("0m")]
    [InlineData("1n")]
    public async Task ZeroTimeoutIsDeadlineExceededAtOnce(string timeout)
    {
        await using var server = TestServer.Start();
        var result = await VersionAsync(server, "hang:2000", new HeaderField("grpc-timeout", timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
    }

    [Fact]
    public async Task DeadlineWhileTheRequestBodyIsStillComingIsDeadlineExceeded()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "200m")), endStream: false);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
        // The request side was never finished, so the server also resets the stream (RFC 9113 8.1).
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        while (result.ResetCode is null && DateTime.UtcNow < deadline) await client.ReadFrameAsync();
        Assert.Equal(Http2ErrorCode.NoError, result.ResetCode);
        await client.PingRoundTripAsync();
    }

    [Fact]
    public async Task TooLargeRequestIsResourceExhaustedAndTheStreamIsStopped()
    {
        await using var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 1024 });
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = new string('z', 5000) });
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, body[..3000]);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.ResourceExhausted, result.GrpcStatus);
        Assert.Null(result.Trailers); // trailers-only
        // More DATA already in flight is discarded without harming the connection.
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, body[3000..]);
        await client.SendVersionAsync(3, "small");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task RequestHeadersReachTheHandler()
    {
        await using var server = TestServer.Start();
        var result = await CallAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.EventsPath, new HeaderField("x-count", "2")),
            RawHttp2Client.GrpcBody(new GetEventsRequest()));
        Assert.Equal(2, result.Messages().Count);
    }

    [Fact]
    public async Task RequestSpreadOverManyTinyFramesWorks()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = "tiny frames" });
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        foreach (var b in body) await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, [b]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, []);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal("tiny frames", result.Message<VersionResponse>().Version);
    }

    // ---- deadlines while the response waits for flow-control window ----

    [Fact]
    public async Task DeadlineBeforeAnyWindowIsATrailersOnlyDeadlineExceeded()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 0));
        await client.SendVersionAsync(1, "big:100", new HeaderField("grpc-timeout", "300m"));
        var result = await client.ReadResponseAsync(1);
        Assert.True(result.ResetCode is null, $"stream reset with {result.ResetCode} instead of a status: {client.Describe()}");
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
        Assert.Equal(0, result.Data.Length);
    }

    [Fact]
    public async Task DeadlineWhileAResponseIsHalfSentEndsItWithDeadlineExceeded()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 100));
        client.AutoWindowUpdate = false;
        await client.SendVersionAsync(1, "big:5000", new HeaderField("grpc-timeout", "300m"));
        var result = await client.ReadResponseAsync(1);
        Assert.True(result.ResetCode is null, $"stream reset with {result.ResetCode} instead of a status: {client.Describe()}");
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal(100, result.Data.Length);
        Assert.NotNull(result.Trailers);
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
    }

    [Fact]
    public async Task DeadlineWhileAStreamWaitsForWindowStillSendsResponseHeaders()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 0));
        await client.SendRequestAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.EventsPath, new HeaderField("x-count", "3"), new HeaderField("grpc-timeout", "300m")),
            RawHttp2Client.GrpcBody(new GetEventsRequest()));
        var result = await client.ReadResponseAsync(1);
        Assert.True(result.ResetCode is null, $"stream reset with {result.ResetCode} instead of a status: {client.Describe()}");
        Assert.Equal("200", result.Header(":status"));
        Assert.Equal("application/grpc", result.Header("content-type"));
        Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
    }
}
