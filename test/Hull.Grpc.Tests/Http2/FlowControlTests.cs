using Hull.Api.Cri;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Flow control and frame sizing in both directions (RFC 9113 4.2, 6.9).</summary>
public class FlowControlTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(150);

    private static long DataOn(IEnumerable<Frame> frames, int streamId) =>
        frames.Where(f => f.Type == FrameType.Data && f.StreamId == streamId).Sum(f => (long)f.Payload.Length);

    /// <summary>
    /// Waits until <paramref name="expected"/> more DATA octets arrived on the streams (or they ended), then
    /// checks that nothing more comes while the server has no window.
    /// </summary>
    private static async Task<long> ExpectDataAsync(RawHttp2Client client, long expected, params int[] streamIds)
    {
        int start = client.Received.Count;
        long Received() => streamIds.Sum(id => DataOn(client.Received.Skip(start), id));
        bool Done() => streamIds.All(id => client.Result(id).Done);
        var deadline = DateTime.UtcNow + RawHttp2Client.Timeout;
        while (Received() < expected && !Done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {Received()} of {expected} DATA octets arrived: {client.Describe()}");
            if (await client.ReadFrameAsync(deadline - DateTime.UtcNow) is null) break;
        }
        if (!Done()) await client.ReadUntilQuietAsync(Quiet);
        long received = Received();
        Assert.True(received <= expected, $"the server sent {received} DATA octets with a window of {expected}");
        return received;
    }

    [Fact]
    public async Task ResponseLargerThanTheStreamWindowFlowsOnlyAsWindowUpdatesArrive()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 1000));
        client.AutoWindowUpdate = false;
        await client.SendVersionAsync(1, "big:5000");

        long granted = 1000;
        var result = client.Result(1);
        while (true)
        {
            long received = await ExpectDataAsync(client, 1000, 1);
            if (result.Done) break;
            Assert.Equal(1000, received); // it used all the window it had, then stopped
            await client.SendWindowUpdateAsync(1, 1000);
            granted += 1000;
        }
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
        Assert.Equal(5000, result.Message<VersionResponse>().RuntimeName.Length);
        Assert.True(granted >= 5000, "the response cannot have fit in fewer grants");
    }

    [Fact]
    public async Task ConnectionWindowLimitsTheSumOfAllStreams()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 1 << 20));
        client.AutoWindowUpdate = false;
        await client.SendVersionAsync(1, "big:40000");
        await client.SendVersionAsync(3, "big:40000");
        Assert.Equal(65_535, await ExpectDataAsync(client, 65_535, 1, 3));
        Assert.False(client.Result(1).Done && client.Result(3).Done);

        await client.SendWindowUpdateAsync(0, 100_000);
        var r1 = await client.ReadResponseAsync(1);
        var r3 = await client.ReadResponseAsync(3);
        Assert.Equal(StatusCode.OK, r1.GrpcStatus);
        Assert.Equal(StatusCode.OK, r3.GrpcStatus);
        Assert.Equal(40_000, r1.Message<VersionResponse>().RuntimeName.Length);
        Assert.Equal(40_000, r3.Message<VersionResponse>().RuntimeName.Length);
    }

    [Fact]
    public async Task InitialWindowSizeChangesApplyToOpenStreams()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 1000));
        client.AutoWindowUpdate = false;
        await client.SendVersionAsync(1, "big:6000");
        Assert.Equal(1000, await ExpectDataAsync(client, 1000, 1));

        // Shrinking below what is in flight makes the window negative: nothing more may be sent...
        await client.SendSettingsAsync((SettingId.InitialWindowSize, 500));
        await client.SendWindowUpdateAsync(1, 400);
        Assert.Equal(0, await ExpectDataAsync(client, 0, 1));
        // ...until it grows past zero again: 500 - 1000 + 400 = -100, then +2500 → 2400.
        await client.SendSettingsAsync((SettingId.InitialWindowSize, 3000));
        Assert.Equal(2400, await ExpectDataAsync(client, 2400, 1));

        await client.SendWindowUpdateAsync(1, 10_000);
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
    }

    [Fact]
    public async Task InitialWindowSizeThatOverflowsAnOpenStreamIsAFlowControlError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.SendVersionAsync(1, "sleep:5000:iws");
            await server.Service.Signals("iws").Started.Task.WaitAsync(RawHttp2Client.Timeout);
            await client.SendWindowUpdateAsync(1, 0x7FFF_FFFF - 65_535); // the stream's window is now 2^31-1
            await client.SendSettingsAsync((SettingId.InitialWindowSize, 65_536));
            await client.ExpectGoAwayAsync(Http2ErrorCode.FlowControlError);
            await server.Service.Signals("iws").Cancelled.Task.WaitAsync(RawHttp2Client.Timeout);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task DataFramesRespectTheDefaultMaxFrameSize()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 1 << 20));
        await client.SendWindowUpdateAsync(0, 1 << 20);
        await client.SendVersionAsync(1, "big:100000");
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
        Assert.All(result.DataFrameLengths, length => Assert.InRange(length, 1, 16_384));
        Assert.Contains(16_384, result.DataFrameLengths);
        Assert.All(client.Received, f => Assert.InRange(f.Header.Length, 0, 16_384));
    }

    [Fact]
    public async Task DataFramesGrowToTheClientsLargerMaxFrameSize()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.InitialWindowSize, 1 << 20), (SettingId.MaxFrameSize, 40_000));
        await client.SendWindowUpdateAsync(0, 1 << 20);
        await client.SendVersionAsync(1, "big:100000");
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
        Assert.All(result.DataFrameLengths, length => Assert.InRange(length, 1, 40_000));
        Assert.Contains(result.DataFrameLengths, length => length > 16_384);
    }

    [Fact]
    public async Task LargeTrailersAreSplitIntoContinuationFrames()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync();
        // '#' has a 12-bit Huffman code, so the block cannot shrink below the frame size.
        string message = new('#', 24_000);
        await client.SendVersionAsync(1, $"fail:{(int)StatusCode.InvalidArgument}:{message}");
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.InvalidArgument, result.GrpcStatus);
        Assert.Equal(message, result.GrpcMessageRaw);
        Assert.Contains(client.Received, f => f.Type == FrameType.Continuation && f.StreamId == 1);
        Assert.All(client.Received, f => Assert.InRange(f.Header.Length, 0, 16_384));
    }

    [Fact]
    public async Task DataBeyondTheStreamReceiveWindowIsAStreamFlowControlError()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { StreamWindowSize = 1000 } });
        await using var client = await server.ConnectReadyAsync();
        Assert.Equal(1000u, client.ServerSettings[SettingId.InitialWindowSize]);
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        // The server re-grants window as it buffers, so only a single frame can overrun it; padding counts.
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [100, .. new byte[900]]);
        await client.PingRoundTripAsync();
        Assert.Null(client.Result(1).ResetCode);
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [100, .. new byte[900]]);
        await client.PingRoundTripAsync();
        await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 1, [100, .. new byte[1000]]); // 1001 > 1000
        await client.ExpectRstStreamAsync(1, Http2ErrorCode.FlowControlError);
        await client.SendVersionAsync(3, "after");
        Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(3)).GrpcStatus);
    }

    [Fact]
    public async Task DataBeyondTheConnectionReceiveWindowIsAConnectionFlowControlError()
    {
        // The connection window comes back only as handlers consume bodies, so unfinished bodies use it up: 65 streams
        // hold 1000 octets each, leaving 535 of the 65535; then only what is not held (padding) comes back.
        await using var server = TestServer.Start(new() { MaxReceiveMessageSize = 1000, Http2 = new() { ConnectionWindowSize = 65_535 } });
        await using (var client = await server.ConnectReadyAsync())
        {
            for (int id = 1; id <= 129; id += 2)
            {
                await client.SendHeadersAsync(id, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
                await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, id, new byte[1000]);
            }
            await client.SendHeadersAsync(131, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
            await client.WriteFrameAsync(FrameType.Data, FrameFlags.Padded, 131, [34, .. new byte[500], .. new byte[34]]); // exactly the rest, padding included
            await client.PingRoundTripAsync();
            Assert.Null(client.GoAway);
            // Padding is never held, and with less than half the window left it is granted again at once: 35 octets.
            long granted = client.Received.Where(f => f.Type == FrameType.WindowUpdate && f.StreamId == 0)
                .Sum(f => (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(f.Payload));
            Assert.Equal(35, granted);
            await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 131, new byte[35]);
            await client.PingRoundTripAsync();
            Assert.Null(client.GoAway);
            await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 131, [0]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FlowControlError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task ReceiveWindowsAreReplenishedForLargeRequests()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { StreamWindowSize = 16_384, ConnectionWindowSize = 65_535 } });
        using var channel = server.Channel();
        string big = new('v', 300_000);
        var response = await TestServer.VersionAsync(channel, new VersionRequest { Version = big })
            .WaitAsync(RawHttp2Client.Timeout);
        Assert.Equal(big, response.Version);
    }

    [Fact]
    public async Task RawClientHonouringServerWindowUpdatesCanSendALargeBody()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { StreamWindowSize = 16_384, ConnectionWindowSize = 65_535 } });
        await using var client = await server.ConnectReadyAsync();
        var body = RawHttp2Client.GrpcBody(new VersionRequest { Version = new string('w', 100_000) });
        await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
        long streamWindow = 16_384, connectionWindow = 65_535;
        int sent = 0;
        while (sent < body.Length)
        {
            int chunk = (int)Math.Min(Math.Min(streamWindow, connectionWindow), Math.Min(16_384, body.Length - sent));
            if (chunk == 0)
            {
                var update = await client.ReadFrameAsync() ?? throw new Xunit.Sdk.XunitException("connection closed");
                if (update.Type != FrameType.WindowUpdate) continue;
                uint increment = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(update.Payload);
                if (update.StreamId == 0) connectionWindow += increment;
                else if (update.StreamId == 1) streamWindow += increment;
                continue;
            }
            bool last = sent + chunk == body.Length;
            await client.WriteFrameAsync(FrameType.Data, last ? FrameFlags.EndStream : FrameFlags.None, 1, body[sent..(sent + chunk)]);
            sent += chunk;
            streamWindow -= chunk;
            connectionWindow -= chunk;
        }
        var result = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, result.GrpcStatus);
        Assert.Equal(100_000, result.Message<VersionResponse>().Version.Length);
    }
}
