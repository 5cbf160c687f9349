using Hull.Api.Cri;
using Hull.Grpc.Hpack;
using Hull.Grpc.Http2;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>
/// Calls answered before their request body was complete: the answer is right, the stream is stopped, and
/// nothing is left behind as an unobserved exception.
/// </summary>
public class AbandonedRequestTests
{
    private static async Task AnswerWithoutBodyAsync(TestServer server, IReadOnlyList<HeaderField> headers, Func<StreamResult, bool> expected, bool closeAbruptly = false)
    {
        var client = await server.ConnectReadyAsync();
        try
        {
            await client.SendHeadersAsync(1, headers, endStream: false);
            await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 1, [0, 0, 0]); // part of a prefix; more "to come"
            var result = await client.ReadResponseAsync(1);
            Assert.True(expected(result), $"unexpected answer: {client.Describe()}");
            if (closeAbruptly) client.Abort();
            else await client.PingRoundTripAsync();
        }
        finally
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnswersBeforeTheBodyLeaveNoUnobservedExceptions()
    {
        UnobservedExceptions.Start();
        await using (var server = TestServer.Start(new GrpcServerOptions { MaxReceiveMessageSize = 100 }))
        {
            await AnswerWithoutBodyAsync(server, RawHttp2Client.RequestHeaders("/nope/Nope"), r => r.GrpcStatus == StatusCode.Unimplemented);
            await AnswerWithoutBodyAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "bad")), r => r.GrpcStatus == StatusCode.Internal);
            await AnswerWithoutBodyAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "50m")), r => r.GrpcStatus == StatusCode.DeadlineExceeded);
            await AnswerWithoutBodyAsync(server, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "50m")), r => r.GrpcStatus == StatusCode.DeadlineExceeded, closeAbruptly: true);

            // A body over the limit after the deadline already answered.
            await using (var client = await server.ConnectReadyAsync())
            {
                await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "50m")), endStream: false);
                var result = await client.ReadResponseAsync(1);
                Assert.Equal(StatusCode.DeadlineExceeded, result.GrpcStatus);
                await client.SendHeadersAsync(3, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath, new HeaderField("grpc-timeout", "50m")), endStream: false);
                await client.WriteFrameAsync(FrameType.Data, FrameFlags.None, 3, new byte[500]);
                Assert.Equal(StatusCode.ResourceExhausted, (await client.ReadResponseAsync(3)).GrpcStatus);
            }
            // Connections torn down with calls that never got their body.
            for (int i = 0; i < 5; i++)
            {
                var client = await server.ConnectReadyAsync();
                await client.SendHeadersAsync(1, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
                await client.PingRoundTripAsync();
                client.Abort();
                await client.DisposeAsync();
            }
            await server.AssertServesAsync();
        }
        UnobservedExceptions.AssertNone();
    }

    [Fact]
    public async Task ResetBeforeTheBodyCancelsTheCallQuietly()
    {
        UnobservedExceptions.Start();
        await using (var server = TestServer.Start())
        {
            await using var client = await server.ConnectReadyAsync();
            for (int id = 1; id < 40; id += 2)
            {
                await client.SendHeadersAsync(id, RawHttp2Client.RequestHeaders(RawHttp2Client.VersionPath), endStream: false);
                await client.SendRstStreamAsync(id, Http2ErrorCode.Cancel);
            }
            await client.PingRoundTripAsync();
            await client.SendVersionAsync(41, "after resets");
            Assert.Equal("after resets", (await client.ReadResponseAsync(41)).Message<VersionResponse>().Version);
            Assert.All(Enumerable.Range(0, 20), i => Assert.Null(client.Result(1 + 2 * i).Headers));
        }
        UnobservedExceptions.AssertNone();
    }
}
