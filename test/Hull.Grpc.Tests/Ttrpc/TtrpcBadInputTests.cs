using Google.Protobuf;
using Hull.Grpc.Tests.Ttrpc.Echo;
using Hull.Grpc.Ttrpc;
using Wire = Hull.Grpc.Ttrpc.Wire;

namespace Hull.Grpc.Tests.Ttrpc;

using global::Grpc.Core;

/// <summary>What the server and the client do with frames a correct peer never sends: the answers upstream gives, no crash, no hang.</summary>
public sealed class TtrpcBadInputTests
{
    private static byte[] EchoRequestBytes(string text, string service = "hull.test.ttrpc.Echo", string method = "Say") =>
        new Wire.Request { Service = service, Method = method, Payload = new EchoRequest { Text = text }.ToByteString() }.ToByteArray();

    private static async Task<(RawPeer Peer, Task Serving)> ServeRawAsync()
    {
        var (a, b) = await SocketPairs.CreateAsync();
        var server = new TtrpcServer();
        Echo.Echo.BindService(server, new EchoService());
        return (new RawPeer(a), server.ServeAsync(b));
    }

    private static Wire.Response Parse(byte[] data) => Wire.Response.Parser.ParseFrom(data);

    [Fact]
    public async Task Server_answers_an_oversized_message_with_resource_exhausted_and_goes_on()
    {
        var (peer, serving) = await ServeRawAsync();
        uint length = TtrpcProtocol.MaxMessageLength + 1;
        await peer.SendAsync(length, 1, (byte)TtrpcMessageType.Request, 0, new byte[length]);
        var (header, data) = await peer.ReceiveAsync();
        Assert.Equal(1u, header.StreamId);
        Assert.Equal(TtrpcMessageType.Response, header.Type);
        Assert.Equal((int)StatusCode.ResourceExhausted, Parse(data).Status.Code);
        Assert.Equal($"message length {length} exceed maximum message size of {TtrpcProtocol.MaxMessageLength}", Parse(data).Status.Message);

        await peer.SendAsync(3, TtrpcMessageType.Request, EchoRequestBytes("still here"));
        (header, data) = await peer.ReceiveAsync();
        Assert.Equal(3u, header.StreamId);
        Assert.Equal("still here", EchoReply.Parser.ParseFrom(Parse(data).Payload).Text);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData(2u, "StreamID must be odd for client initiated streams")]
    [InlineData(0u, "StreamID must be odd for client initiated streams")]
    public async Task Server_rejects_even_stream_ids(uint streamId, string message)
    {
        var (peer, serving) = await ServeRawAsync();
        await peer.SendAsync(streamId, TtrpcMessageType.Request, EchoRequestBytes("x"));
        var (header, data) = await peer.ReceiveAsync();
        Assert.Equal(streamId, header.StreamId);
        Assert.Equal((int)StatusCode.InvalidArgument, Parse(data).Status.Code);
        Assert.Equal(message, Parse(data).Status.Message);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Server_rejects_a_reused_stream_id()
    {
        var (peer, serving) = await ServeRawAsync();
        await peer.SendAsync(5, TtrpcMessageType.Request, EchoRequestBytes("first"));
        Assert.Equal("first", EchoReply.Parser.ParseFrom(Parse((await peer.ReceiveAsync()).Data).Payload).Text);
        await peer.SendAsync(3, TtrpcMessageType.Request, EchoRequestBytes("older"));
        var (header, data) = await peer.ReceiveAsync();
        Assert.Equal(3u, header.StreamId);
        Assert.Equal("StreamID cannot be re-used and must increment", Parse(data).Status.Message);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Server_rejects_data_for_an_unknown_stream()
    {
        var (peer, serving) = await ServeRawAsync();
        await peer.SendAsync(7, TtrpcMessageType.Data, [1, 2, 3]);
        var (header, data) = await peer.ReceiveAsync();
        Assert.Equal(7u, header.StreamId);
        Assert.Equal((int)StatusCode.InvalidArgument, Parse(data).Status.Code);
        Assert.Equal("StreamID is no longer active", Parse(data).Status.Message);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Server_answers_garbage_requests_unknown_services_and_methods()
    {
        var (peer, serving) = await ServeRawAsync();
        await peer.SendAsync(1, TtrpcMessageType.Request, [0xff, 0xff, 0xff]);
        var garbage = Parse((await peer.ReceiveAsync()).Data).Status;
        Assert.Equal((int)StatusCode.InvalidArgument, garbage.Code);
        Assert.StartsWith("unmarshal request error:", garbage.Message);

        await peer.SendAsync(3, TtrpcMessageType.Request, EchoRequestBytes("x", service: "no.Such"));
        var service = Parse((await peer.ReceiveAsync()).Data).Status;
        Assert.Equal(((int)StatusCode.Unimplemented, "service no.Such"), (service.Code, service.Message));

        await peer.SendAsync(5, TtrpcMessageType.Request, EchoRequestBytes("x", method: "Shout"));
        var method = Parse((await peer.ReceiveAsync()).Data).Status;
        Assert.Equal(((int)StatusCode.Unimplemented, "method Shout"), (method.Code, method.Message));

        // A bad payload for a known method is the handler's unmarshalling error.
        var badPayload = new Wire.Request { Service = "hull.test.ttrpc.Echo", Method = "Say", Payload = ByteString.CopyFrom(0xff, 0xff) }.ToByteArray();
        await peer.SendAsync(7, TtrpcMessageType.Request, badPayload);
        Assert.Equal((int)StatusCode.Internal, Parse((await peer.ReceiveAsync()).Data).Status.Code);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Server_ignores_unknown_message_types()
    {
        var (peer, serving) = await ServeRawAsync();
        await peer.SendAsync(3, 3, 9, 0, [1, 2, 3]);
        await peer.SendAsync(3, TtrpcMessageType.Request, EchoRequestBytes("after"));
        Assert.Equal("after", EchoReply.Parser.ParseFrom(Parse((await peer.ReceiveAsync()).Data).Payload).Text);
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData(4)]   // inside the header
    [InlineData(14)]  // inside the data
    public async Task Server_ends_the_connection_on_a_truncated_message(int bytesSent)
    {
        var (peer, serving) = await ServeRawAsync();
        var frame = new byte[TtrpcProtocol.HeaderLength + 100];
        new TtrpcFrameHeader(100, 1, TtrpcMessageType.Request, 0).Write(frame);
        await peer.Stream.WriteAsync(frame.AsMemory(0, bytesSent));
        peer.Stream.Dispose();
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<(TtrpcClient Client, Echo.Echo.EchoClient Stub, RawPeer Server)> ClientWithRawServerAsync()
    {
        var (a, b) = await SocketPairs.CreateAsync();
        var client = new TtrpcClient(a);
        return (client, new Echo.Echo.EchoClient(client), new RawPeer(b));
    }

    [Fact]
    public async Task Client_uses_odd_increasing_stream_ids_and_carries_the_timeout()
    {
        var (client, stub, server) = await ClientWithRawServerAsync();
        await using var _ = client;
        var first = stub.SayAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        var (h1, d1) = await server.ReceiveAsync();
        var second = stub.SayAsync(new EchoRequest());
        var (h2, d2) = await server.ReceiveAsync();
        Assert.Equal((1u, 3u), (h1.StreamId, h2.StreamId));
        Assert.InRange(Wire.Request.Parser.ParseFrom(d1).TimeoutNano, 5_000_000_000L, 10_000_000_000L);
        Assert.Equal(0, Wire.Request.Parser.ParseFrom(d2).TimeoutNano);
        Assert.Equal("Say", Wire.Request.Parser.ParseFrom(d1).Method);

        foreach (var id in new[] { 3u, 1u })
            await server.SendAsync(id, TtrpcMessageType.Response, new Wire.Response { Payload = new EchoReply { Text = $"r{id}" }.ToByteString() }.ToByteArray());
        Assert.Equal("r1", (await first).Text);
        Assert.Equal("r3", (await second).Text);
    }

    [Fact]
    public async Task Client_ignores_answers_for_unknown_streams_and_fails_the_call_an_oversized_answer_was_for()
    {
        var (client, stub, server) = await ClientWithRawServerAsync();
        await using var _ = client;
        var call = stub.SayAsync(new EchoRequest()).ResponseAsync;
        var (h, _) = await server.ReceiveAsync();
        await server.SendAsync(99, TtrpcMessageType.Response, new Wire.Response().ToByteArray());
        uint length = TtrpcProtocol.MaxMessageLength + 1;
        await server.SendAsync(length, h.StreamId, (byte)TtrpcMessageType.Response, 0, new byte[length]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);

        var next = stub.SayAsync(new EchoRequest()).ResponseAsync;
        var (h2, _) = await server.ReceiveAsync();
        await server.SendAsync(h2.StreamId, TtrpcMessageType.Response, new Wire.Response { Payload = new EchoReply { Text = "fine" }.ToByteString() }.ToByteArray());
        Assert.Equal("fine", (await next.WaitAsync(TimeSpan.FromSeconds(10))).Text);
    }

    [Fact]
    public async Task Client_fails_pending_calls_when_the_server_sends_a_truncated_message()
    {
        var (client, stub, server) = await ClientWithRawServerAsync();
        await using var _ = client;
        var call = stub.SayAsync(new EchoRequest()).ResponseAsync;
        var (h, _) = await server.ReceiveAsync();
        var frame = new byte[TtrpcProtocol.HeaderLength];
        new TtrpcFrameHeader(50, h.StreamId, TtrpcMessageType.Response, 0).Write(frame);
        await server.Stream.WriteAsync(frame);
        await server.Stream.WriteAsync(new byte[10]);
        server.Stream.Dispose();
        var e = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public async Task Client_fails_a_call_answered_with_data_on_a_unary_stream()
    {
        var (client, stub, server) = await ClientWithRawServerAsync();
        await using var _ = client;
        var call = stub.SayAsync(new EchoRequest()).ResponseAsync;
        var (h, _) = await server.ReceiveAsync();
        await server.SendAsync(h.StreamId, TtrpcMessageType.Data, [1]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("non-streaming", e.Status.Detail);
    }
}
