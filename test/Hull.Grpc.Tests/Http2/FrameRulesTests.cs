using System.Buffers.Binary;
using Hull.Api.Cri;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Per-frame rules of RFC 9113 sections 4-6: each violation gets exactly the prescribed answer.</summary>
public class FrameRulesTests
{
    // ---- frame size and PING ----

    [Fact]
    public async Task FrameLargerThanMaxFrameSizeIsAFrameSizeError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, new byte[16_385]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FrameSizeError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task FrameHeaderAnnouncingMoreThanMaxFrameSizeIsRejectedBeforeThePayloadArrives()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            // Only the 9-octet header of a 16 MiB frame: the server must not wait for the payload.
            var header = new byte[9];
            new FrameHeader(16_777_215, FrameType.Headers, FrameFlags.None, 1).Write(header);
            await client.SendRawAsync(header);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FrameSizeError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task PingIsAnsweredWithAckAndTheSamePayload()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendPingAsync(0xDEAD_BEEF_0BAD_F00D);
        Frame? ack;
        do ack = await client.ReadFrameAsync();
        while (ack is not null && ack.Type != FrameType.Ping);
        Assert.NotNull(ack);
        Assert.True(ack.Has(FrameFlags.Ack));
        Assert.Equal(0, ack.StreamId);
        Assert.Equal(0xDEAD_BEEF_0BAD_F00DUL, BinaryPrimitives.ReadUInt64BigEndian(ack.Payload));
        // An unsolicited PING ACK is ignored.
        await client.SendPingAsync(5, ack: true);
        await client.PingRoundTripAsync(6);
        Assert.Single(client.Received, f => f.Type == FrameType.Ping && BinaryPrimitives.ReadUInt64BigEndian(f.Payload) == 6);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(9)]
    public async Task PingOfWrongLengthIsAFrameSizeError(int length)
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Ping, FrameFlags.None, 0, new byte[length]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FrameSizeError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task PingOnAStreamIsAProtocolError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Ping, FrameFlags.None, 1, new byte[8]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
        }
        await server.AssertServesAsync();
    }

    // ---- stream identifiers ----

    public static TheoryData<string, byte[][], Http2ErrorCode> ConnectionErrors
    {
        get
        {
            byte[] Block(string path)
            {
                var writer = new System.Buffers.ArrayBufferWriter<byte>();
                new HpackEncoder().Encode(RawHttp2Client.RequestHeaders(path), writer);
                return writer.WrittenSpan.ToArray();
            }
            byte[] F(FrameType type, FrameFlags flags, int stream, byte[] payload) => RawHttp2Client.FrameBytes(type, flags, stream, payload);
            var data = new TheoryData<string, byte[][], Http2ErrorCode>
            {
                { "DATA on stream 0", [F(FrameType.Data, FrameFlags.None, 0, [1, 2, 3])], Http2ErrorCode.ProtocolError },
                { "DATA on an idle stream", [F(FrameType.Data, FrameFlags.None, 1, [1, 2, 3])], Http2ErrorCode.ProtocolError },
                { "HEADERS on stream 0", [F(FrameType.Headers, FrameFlags.EndHeaders, 0, Block(RawHttp2Client.VersionPath))], Http2ErrorCode.ProtocolError },
                { "HEADERS on an even stream", [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 2, Block(RawHttp2Client.VersionPath))], Http2ErrorCode.ProtocolError },
                { "CONTINUATION without HEADERS", [F(FrameType.Continuation, FrameFlags.EndHeaders, 1, Block(RawHttp2Client.VersionPath))], Http2ErrorCode.ProtocolError },
            };
            var e2 = new HpackEncoder();
            var w = new System.Buffers.ArrayBufferWriter<byte>();
            e2.Encode(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), w);
            var block = w.WrittenSpan.ToArray();
            data.Add("HEADERS without END_HEADERS, then PING",
                [F(FrameType.Headers, FrameFlags.None, 1, block[..4]), F(FrameType.Ping, FrameFlags.None, 0, new byte[8])], Http2ErrorCode.ProtocolError);
            data.Add("HEADERS without END_HEADERS, then DATA",
                [F(FrameType.Headers, FrameFlags.None, 1, block[..4]), F(FrameType.Data, FrameFlags.None, 1, [0])], Http2ErrorCode.ProtocolError);
            data.Add("HEADERS without END_HEADERS, then HEADERS on another stream",
                [F(FrameType.Headers, FrameFlags.None, 1, block[..4]), F(FrameType.Headers, FrameFlags.EndHeaders, 3, block)], Http2ErrorCode.ProtocolError);
            data.Add("CONTINUATION on a different stream",
                [F(FrameType.Headers, FrameFlags.None, 1, block[..4]), F(FrameType.Continuation, FrameFlags.EndHeaders, 3, block[4..])], Http2ErrorCode.ProtocolError);
            data.Add("PUSH_PROMISE from a client", [F(FrameType.PushPromise, FrameFlags.EndHeaders, 1, new byte[4])], Http2ErrorCode.ProtocolError);
            data.Add("RST_STREAM on stream 0", [F(FrameType.RstStream, FrameFlags.None, 0, new byte[4])], Http2ErrorCode.ProtocolError);
            data.Add("RST_STREAM on an idle stream", [F(FrameType.RstStream, FrameFlags.None, 1, new byte[4])], Http2ErrorCode.ProtocolError);
            data.Add("RST_STREAM of 3 octets", [F(FrameType.RstStream, FrameFlags.None, 1, new byte[3])], Http2ErrorCode.FrameSizeError);
            data.Add("PRIORITY on stream 0", [F(FrameType.Priority, FrameFlags.None, 0, new byte[5])], Http2ErrorCode.ProtocolError);
            data.Add("WINDOW_UPDATE of 3 octets", [F(FrameType.WindowUpdate, FrameFlags.None, 0, new byte[3])], Http2ErrorCode.FrameSizeError);
            data.Add("WINDOW_UPDATE on an idle stream", [F(FrameType.WindowUpdate, FrameFlags.None, 1, [0, 0, 0, 1])], Http2ErrorCode.ProtocolError);
            data.Add("GOAWAY on a stream", [F(FrameType.GoAway, FrameFlags.None, 1, new byte[8])], Http2ErrorCode.ProtocolError);
            data.Add("GOAWAY shorter than 8 octets", [F(FrameType.GoAway, FrameFlags.None, 0, new byte[7])], Http2ErrorCode.FrameSizeError);
            data.Add("HPACK index 0", [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 1, [0x80])], Http2ErrorCode.CompressionError);
            data.Add("HPACK index beyond the tables", [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 1, [0xBE])], Http2ErrorCode.CompressionError);
            data.Add("HPACK truncated literal", [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 1, [0x40, 0x0A, 0x61])], Http2ErrorCode.CompressionError);
            data.Add("HPACK table size update above the limit", [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.EndStream, 1, [0x3F, 0xE2, 0x1F])], Http2ErrorCode.CompressionError);
            data.Add("padded DATA whose pad length fills the payload",
                [F(FrameType.Headers, FrameFlags.EndHeaders, 1, block), F(FrameType.Data, FrameFlags.Padded, 1, [3, 0, 0])], Http2ErrorCode.ProtocolError);
            data.Add("padded DATA whose pad length exceeds the payload",
                [F(FrameType.Headers, FrameFlags.EndHeaders, 1, block), F(FrameType.Data, FrameFlags.Padded, 1, [200, 1, 2, 3])], Http2ErrorCode.ProtocolError);
            data.Add("padded HEADERS whose pad length fills the payload",
                [F(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.Padded, 1, [(byte)(block.Length + 1), .. block])], Http2ErrorCode.ProtocolError);
            data.Add("padded DATA without a pad length octet",
                [F(FrameType.Headers, FrameFlags.EndHeaders, 1, block), F(FrameType.Data, FrameFlags.Padded, 1, [])], Http2ErrorCode.FrameSizeError);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(ConnectionErrors))]
    public async Task ConnectionErrorsEndTheConnectionWithGoAway(string why, byte[][] frames, Http2ErrorCode expected)
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            foreach (var frame in frames) await client.SendRawAsync(frame);
            var goAway = await client.ExpectGoAwayAsync(expected);
            Assert.False(string.IsNullOrEmpty(goAway.DebugData), why);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task DecreasingStreamIdIsAProtocolError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendVersionAsync(5, "five");
            Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(5)).GrpcStatus);
            // Stream 3 was never opened; opening it after 5 is an unexpected identifier (RFC 9113 5.1.1).
            await client.SendVersionAsync(3, "three");
            var goAway = await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
            Assert.Equal(5, goAway.LastStreamId);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task HeadersOnAClosedStreamIsAStreamClosedError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendVersionAsync(1, "one");
            Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(1)).GrpcStatus);
            await client.SendVersionAsync(1, "again");
            await client.ExpectGoAwayAsync(Http2ErrorCode.StreamClosed);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task DataAfterEndStreamIsAStreamClosedError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, RawHttp2Client.GrpcBody(new VersionRequest { Version = "sleep:2000" }));
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, [1, 2, 3]);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.StreamClosed);
        await client.PingRoundTripAsync();
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task HeadersAgainOnAHalfClosedStreamIsAStreamClosedError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "gate:half-closed");
        await server.Service.Signals("half-closed").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendHeadersAsync(1, [new("x-more", "1")], endStream: true);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.StreamClosed);
        await server.Service.Signals("half-closed").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task HeadersSplitAcrossSeveralContinuationFramesWork()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("x-filler", new string('f', 300))));
        int third = block.Length / 3;
        await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 1, block[..third]);
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, block[third..(2 * third)]);
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, []); // empty fragments are legal
        await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.EndHeaders, 1, block[(2 * third)..]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, RawHttp2Client.GrpcBody(new VersionRequest { Version = "split" }));
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        Assert.Equal("split", response.Message<VersionResponse>().Version);
    }

    [Fact]
    public async Task HeaderBlockGrowingWithoutEndIsRefused()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxHeaderListSize = 4096 } });
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 1, new byte[1000]);
            for (int i = 0; i < 10; i++) await client.WriteFrameAsync(FrameType.Continuation, FrameFlags.None, 1, new byte[1000]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.EnhanceYourCalm);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task UnknownFrameTypesAndPriorityAreIgnored()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendRawAsync(RawHttp2Client.FrameBytes(0xEE, 0xFF, 0, [1, 2, 3]));
        await client.SendRawAsync(RawHttp2Client.FrameBytes(0xEE, 0x00, 7, []));
        await client.WriteFrameAsync(FrameType.Priority, FrameFlags.None, 9, [0, 0, 0, 3, 16]); // PRIORITY on an idle stream is allowed
        await client.PingRoundTripAsync();
        await client.SendVersionAsync(11, "after-unknown");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(11)).GrpcStatus);
    }

    [Fact]
    public async Task UnknownFrameBetweenHeadersAndContinuationIsAProtocolError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
            await client.WriteFrameAsync(FrameType.Headers, FrameFlags.None, 1, block[..3]);
            await client.SendRawAsync(RawHttp2Client.FrameBytes(0xEE, 0, 0, []));
            await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
        }
        await server.AssertServesAsync();
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public async Task PriorityOfWrongLengthIsAStreamError(int length)
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.WriteFrameAsync(FrameType.Priority, FrameFlags.None, 1, new byte[length]);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.FrameSizeError);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task StreamDependingOnItselfIsAStreamError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.WriteFrameAsync(FrameType.Priority, FrameFlags.None, 1, [0, 0, 0, 1, 16]);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        await client.PingRoundTripAsync();
    }

    // ---- malformed requests are stream errors; the connection stays up ----

    public static TheoryData<string, HeaderField[]> MalformedRequests => new()
    {
        { "uppercase header name", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new("Content-Type", "application/grpc")] },
        { "missing :path", [new(":method", "POST"), new(":scheme", "http"), new("content-type", "application/grpc")] },
        { "missing :method", [new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath)] },
        { "empty :path", [new(":method", "POST"), new(":scheme", "http"), new(":path", "")] },
        { "connection header", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new("connection", "keep-alive")] },
        { "transfer-encoding header", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new("transfer-encoding", "chunked")] },
        { "te other than trailers", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new("te", "gzip")] },
        { "pseudo-header after a regular header", [new(":method", "POST"), new(":scheme", "http"), new("content-type", "application/grpc"), new(":path", RawHttp2Client.VersionPath)] },
        { "duplicate :path", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new(":path", "/x")] },
        { "unknown pseudo-header", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new(":status", "200")] },
        { "response pseudo-header :protocol", [new(":method", "POST"), new(":scheme", "http"), new(":path", RawHttp2Client.VersionPath), new(":protocol", "websocket")] },
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task MalformedRequestIsAStreamProtocolError(string why, HeaderField[] headers)
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, headers, endStream: true);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        Assert.Null(client.Result(1).Headers);
        // The connection is still fine, and the request never reached a handler.
        await client.SendVersionAsync(3, "after " + why);
        var response = await client.ReadResponseAsync(3);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        Assert.Equal(1, server.Service.Calls);
    }

    [Fact]
    public async Task DataForAStreamTheServerResetIsIgnored()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, [new(":method", "POST"), new(":scheme", "http"), new(":path", "/x"), new("Bad", "1")], endStream: false);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        // Frames in flight before the client saw the reset must not kill the connection.
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.EndStream, 1, [0, 0, 0, 0, 0]);
        await client.SendWindowUpdateAsync(1, 100);
        await client.PingRoundTripAsync();
    }

    // ---- WINDOW_UPDATE ----

    [Fact]
    public async Task ZeroWindowUpdateOnTheConnectionIsAProtocolError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendWindowUpdateAsync(0, 0);
            await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task ZeroWindowUpdateOnAStreamIsAStreamProtocolError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:5000:zero-wu");
        await server.Service.Signals("zero-wu").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendWindowUpdateAsync(1, 0);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        await server.Service.Signals("zero-wu").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task ConnectionWindowOverflowIsAFlowControlError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendWindowUpdateAsync(0, 0x7FFF_FFFF - 65_535); // exactly 2^31-1: allowed
            await client.PingRoundTripAsync();
            await client.SendWindowUpdateAsync(0, 1);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FlowControlError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task StreamWindowOverflowIsAStreamFlowControlError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:5000:overflow");
        await server.Service.Signals("overflow").Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendWindowUpdateAsync(1, 0x7FFF_FFFF);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.FlowControlError);
        await server.Service.Signals("overflow").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task ReservedBitOfWindowUpdateIsIgnored()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendWindowUpdateAsync(0, 0x8000_0001);
        await client.PingRoundTripAsync();
    }

    // ---- RST_STREAM ----

    [Fact]
    public async Task RstStreamMidCallCancelsTheHandler()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendVersionAsync(1, "sleep:10000:rst");
        var signals = server.Service.Signals("rst");
        await signals.Started.Task.WaitAsync(RawHttp2Client.Timeout);
        await client.SendRstStreamAsync(1, Http2ErrorCode.Cancel);
        await signals.Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        // Nothing more is sent on the reset stream; the connection carries on.
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
        var stream1 = client.Result(1);
        Assert.Null(stream1.Headers);
        Assert.Null(stream1.ResetCode);
        // A late RST_STREAM for the already-closed stream is harmless.
        await client.SendRstStreamAsync(1, Http2ErrorCode.Cancel);
        await client.PingRoundTripAsync();
    }

    // ---- padding ----

    [Fact]
    public async Task PaddedHeadersAndDataAreAccepted()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        var block = client.EncodeHeaders(RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath));
        // PADDED + PRIORITY HEADERS: pad length, 5 priority octets, fragment, padding.
        byte[] headers = [10, 0, 0, 0, 0, 15, .. block, .. new byte[10]];
        await client.WriteFrameAsync(FrameType.Headers, FrameFlags.EndHeaders | FrameFlags.Padded | FrameFlags.Priority, 1, headers);
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = "padded" });
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [3, .. body[..4], 0, 0, 0]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [0, .. body[4..10]]);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [2, 0, 0]); // only padding
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded | FrameFlags.EndStream, 1, [255, .. body[10..], .. new byte[255]]);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        Assert.Equal("padded", response.Message<VersionResponse>().Version);
    }

    // ---- trailers ----

    [Fact]
    public async Task RequestTrailersEndTheRequest()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, RawHttp2Client.GrpcBody(new VersionRequest { Version = "trailed" }));
        await client.SendHeadersAsync(1, [new("x-trailer", "1")], endStream: true);
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        Assert.Equal("trailed", response.Message<VersionResponse>().Version);
    }

    [Fact]
    public async Task TrailersWithoutEndStreamAreAStreamError()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        await client.SendHeadersAsync(1, [new("x-trailer", "1")], endStream: false);
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.ProtocolError);
        await client.PingRoundTripAsync();
    }
}
