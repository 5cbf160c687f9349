using System.Buffers.Binary;
using System.Text;
using Hull.Grpc.Http2;
using Hull.Grpc.Tests.Grpc;

namespace Hull.Grpc.Tests.Http2;

/// <summary>Connection preface and SETTINGS handling (RFC 9113 3.4, 6.5).</summary>
public class ConnectionSettingsTests
{
    [Fact]
    public async Task ServerPrefaceIsSettingsAdvertisingItsLimits()
    {
        await using var server = TestServer.Start(new() { Http2 = new() { MaxConcurrentStreams = 7, StreamWindowSize = 100_000 } });
        await using var client = await server.ConnectReadyAsync();
        Assert.Equal(7u, client.ServerSettings[SettingId.MaxConcurrentStreams]);
        Assert.Equal(100_000u, client.ServerSettings[SettingId.InitialWindowSize]);
        // Our SETTINGS are acknowledged.
        var frames = await client.ReadForAsync(TimeSpan.FromMilliseconds(200));
        Assert.Contains(frames, f => f.Type == FrameType.Settings && f.Has(FrameFlags.Ack) && f.Header.Length == 0);
        // The connection window is raised from 65535 with a WINDOW_UPDATE on stream 0: to 16 MiB, or to the largest
        // request (a 16 MiB message and its 5-byte prefix) and one frame more if that is more.
        var update = Assert.Single(frames, f => f.Type == FrameType.WindowUpdate);
        Assert.Equal(0, update.StreamId);
        Assert.Equal((16u << 20) + 5 + 16_384 - 65_535u, BinaryPrimitives.ReadUInt32BigEndian(update.Payload));
        await client.PingRoundTripAsync();
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003")] // a TLS ClientHello
    public async Task BadPrefaceIsAConnectionError(string preface)
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectAsync())
        {
            await client.SendRawAsync(Encoding.Latin1.GetBytes(preface));
            await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task TruncatedPrefaceThenCloseEndsQuietly()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectAsync())
        {
            await client.SendRawAsync("PRI * HTTP/2.0\r\n"u8.ToArray());
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task FirstFrameNotSettingsIsAConnectionError()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectAsync())
        {
            await client.SendPrefaceAsync();
            await client.SendPingAsync(1);
            await client.ExpectGoAwayAsync(Http2ErrorCode.ProtocolError);
        }
        await server.AssertServesAsync();
    }

    public static TheoryData<string, byte[], FrameFlags, int, Http2ErrorCode> BadSettings => new()
    {
        { "length not a multiple of 6", new byte[7], FrameFlags.None, 0, Http2ErrorCode.FrameSizeError },
        { "ACK with a payload", Setting(SettingId.EnablePush, 0), FrameFlags.Ack, 0, Http2ErrorCode.FrameSizeError },
        { "on a stream", Setting(SettingId.EnablePush, 0), FrameFlags.None, 1, Http2ErrorCode.ProtocolError },
        { "INITIAL_WINDOW_SIZE 2^31", Setting(SettingId.InitialWindowSize, 0x8000_0000), FrameFlags.None, 0, Http2ErrorCode.FlowControlError },
        { "INITIAL_WINDOW_SIZE 2^32-1", Setting(SettingId.InitialWindowSize, uint.MaxValue), FrameFlags.None, 0, Http2ErrorCode.FlowControlError },
        { "MAX_FRAME_SIZE 16383", Setting(SettingId.MaxFrameSize, 16_383), FrameFlags.None, 0, Http2ErrorCode.ProtocolError },
        { "MAX_FRAME_SIZE 0", Setting(SettingId.MaxFrameSize, 0), FrameFlags.None, 0, Http2ErrorCode.ProtocolError },
        { "MAX_FRAME_SIZE 2^24", Setting(SettingId.MaxFrameSize, 16_777_216), FrameFlags.None, 0, Http2ErrorCode.ProtocolError },
        { "ENABLE_PUSH 2", Setting(SettingId.EnablePush, 2), FrameFlags.None, 0, Http2ErrorCode.ProtocolError },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadSettingsAreConnectionErrors(string why, byte[] payload, FrameFlags flags, int streamId, Http2ErrorCode expected)
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectReadyAsync())
        {
            await client.WriteFrameAsync(FrameType.Settings, flags, streamId, payload);
            var goAway = await client.ExpectGoAwayAsync(expected);
            Assert.False(string.IsNullOrEmpty(goAway.DebugData), why);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task BadSettingsAsTheVeryFirstFrameAreConnectionErrors()
    {
        await using var server = TestServer.Start();
        await using (var client = await server.ConnectAsync())
        {
            await client.SendPrefaceAsync();
            await client.WriteFrameAsync(FrameType.Settings, FrameFlags.None, 0, new byte[5]);
            await client.ExpectGoAwayAsync(Http2ErrorCode.FrameSizeError);
        }
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task ValidEdgeValuesAndUnknownSettingsAreAccepted()
    {
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync(
            (SettingId.InitialWindowSize, 0x7FFF_FFFF),
            (SettingId.MaxFrameSize, 16_777_215),
            (SettingId.EnablePush, 1),
            (SettingId.HeaderTableSize, 0),
            ((SettingId)0xABCD, 42));
        await client.PingRoundTripAsync();
        // A second SETTINGS mid-connection is acknowledged too.
        await client.SendSettingsAsync((SettingId.MaxFrameSize, 16_384));
        await client.PingRoundTripAsync();
        Assert.Equal(2, client.Received.Count(f => f.Type == FrameType.Settings && f.Has(FrameFlags.Ack)));
        await client.SendVersionAsync(1, "hello");
        var response = await client.ReadResponseAsync(1);
        Assert.Equal(StatusCode.OK, response.GrpcStatus);
        Assert.Equal("hello", response.Message<Hull.Api.Cri.VersionResponse>().Version);
    }

    [Fact]
    public async Task HeaderTableSizeZeroIsHonouredByTheEncoder()
    {
        // The server must emit a dynamic table size update and never index; our decoder (limit 0) enforces both.
        await using var server = TestServer.Start();
        await using var client = await server.ConnectReadyAsync((SettingId.HeaderTableSize, 0));
        await client.PingRoundTripAsync();
        for (int id = 1; id <= 5; id += 2)
        {
            await client.SendVersionAsync(id, "t" + id);
            Assert.Equal(StatusCode.OK, (await client.ReadResponseAsync(id)).GrpcStatus);
        }
    }

    internal static byte[] Setting(SettingId id, uint value)
    {
        var payload = new byte[6];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)id);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(2), value);
        return payload;
    }
}
