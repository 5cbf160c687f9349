using Hull.Api.Cri;
using Hull.Grpc.Server;
using Hull.Grpc.Tests.Http2;
using Hull.Grpc.Tests.Ttrpc;
using Hull.Grpc.Tests.Ttrpc.Echo;

namespace Hull.Grpc.Tests.Grpc;

/// <summary>What a handler sees through Grpc.Core.Api's ServerCallContext on <see cref="GrpcServer"/>, and what it sends back.</summary>
public class CallContextTests
{
    private static readonly TimeSpan Timeout = RawHttp2Client.Timeout;

    [Fact]
    public async Task HandlerSeesHostPeerMethodAndRequestMetadataAndSendsHeadersAndTrailers()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var client = new RuntimeService.RuntimeServiceClient(channel);
        var headers = new Metadata { { "x-echo", "hello" }, { "x-echo-bin", new byte[] { 0, 1, 2, 3, 255 } } };
        using var call = client.VersionAsync(new VersionRequest { Version = "context" }, headers);
        var response = await call.ResponseAsync.WaitAsync(Timeout);

        Assert.Equal($"{server.EndPoint}", response.Version); // :authority
        Assert.Equal("hello/5", response.RuntimeName);
        Assert.Equal("/runtime.v1.RuntimeService/Version", response.RuntimeApiVersion);
        Assert.StartsWith("127.0.0.1:", response.RuntimeVersion);
        Assert.Equal("42", (await call.ResponseHeadersAsync).GetValue("x-answer"));
        var trailers = call.GetTrailers();
        Assert.Equal("done", trailers.GetValue("x-trailer"));
        Assert.Equal([1, 2, 3], trailers.GetValueBytes("x-trailer-bin"));
    }

    [Fact]
    public async Task StatusSetOnTheContextEndsTheCall()
    {
        await using var server = TestServer.Start();
        using var channel = server.Channel();
        var e = await Assert.ThrowsAsync<RpcException>(() => TestServer.VersionAsync(channel,
            new VersionRequest { Version = $"status:{(int)StatusCode.FailedPrecondition}:not now" }).WaitAsync(Timeout));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("not now", e.Status.Detail);
        await server.AssertServesAsync();
    }

    [Fact]
    public async Task ClientStreamingMethodAnswersUnimplementedNamingIt()
    {
        await using var server = new GrpcServer();
        Echo.BindService(server, new EchoService());
        var endPoint = server.ListenTcp(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        using var channel = TestServer.ChannelTo(endPoint);
        var client = new Echo.EchoClient(channel);
        using var call = client.Collect();
        // The answer comes with the request headers; the server then resets the request side (RFC 9113 8.1, as
        // grpc-go does), so a write still under way may fail on its own account (Grpc.Net.Client says Cancelled: in a
        // loop, about a third of the time). The call's answer is what counts.
        try
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "a" });
            await call.RequestStream.CompleteAsync();
        }
        catch (RpcException) { }
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("hull.test.ttrpc.Echo/Collect", e.Status.Detail);
        Assert.Equal("hi", (await client.SayAsync(new EchoRequest { Text = "hi" }).ResponseAsync.WaitAsync(Timeout)).Text);
        await server.StopAsync(TimeSpan.Zero).WaitAsync(Timeout);
    }
}
