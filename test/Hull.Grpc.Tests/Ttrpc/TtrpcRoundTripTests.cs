using System.Diagnostics;
using Google.Protobuf;
using Hull.Grpc.Tests.Ttrpc.Echo;
using Hull.Grpc.Ttrpc;

namespace Hull.Grpc.Tests.Ttrpc;

using global::Grpc.Core;

public sealed class TtrpcRoundTripTests
{
    [Fact]
    public async Task Generated_stubs_call_a_generated_service_over_ttrpc()
    {
        await using var pair = await EchoPair.StartAsync();
        var reply = await pair.Stub.SayAsync(new EchoRequest { Text = "hello" });
        Assert.Equal("hello", reply.Text);
        Assert.Equal("hello", pair.Stub.Say(new EchoRequest { Text = "hello" }).Text);
    }

    [Fact]
    public async Task Metadata_and_deadline_reach_the_handler()
    {
        await using var pair = await EchoPair.StartAsync();
        var reply = await pair.Stub.SayAsync(new EchoRequest { Text = "x" },
            new Metadata { { "who", "hull" } }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.Equal("hull", reply.Metadata["who"]);
        Assert.InRange(reply.TimeoutMs, 20_000, 30_000);
    }

    [Fact]
    public async Task A_handler_error_reaches_the_caller_with_its_code_and_message()
    {
        await using var pair = await EchoPair.StartAsync();
        var e = await Assert.ThrowsAsync<RpcException>(() => pair.Stub.SayAsync(new EchoRequest { FailWith = "no way" }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("no way", e.Status.Detail);
    }

    [Fact]
    public async Task Many_concurrent_calls_each_get_their_own_answer()
    {
        await using var pair = await EchoPair.StartAsync();
        var calls = Enumerable.Range(0, 200).Select(i => pair.Stub.SayAsync(new EchoRequest { Text = $"m{i}", DelayMs = i % 7 }).ResponseAsync).ToArray();
        var replies = await Task.WhenAll(calls);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"m{i}"), replies.Select(r => r.Text));
    }

    [Fact]
    public async Task Payloads_up_to_the_limit_pass_and_larger_requests_are_refused_before_sending()
    {
        await using var pair = await EchoPair.StartAsync();
        var big = new byte[TtrpcProtocol.MaxMessageLength - 1024];
        Assert.Equal(big.Length, (await pair.Stub.SayAsync(new EchoRequest { Blob = ByteString.CopyFrom(big) })).BlobLength);

        var tooBig = new byte[TtrpcProtocol.MaxMessageLength];
        var e = await Assert.ThrowsAsync<TtrpcMessageTooLargeException>(() => pair.Stub.SayAsync(new EchoRequest { Blob = ByteString.CopyFrom(tooBig) }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.True(e.RejectedLength > e.MaximumLength);
        Assert.Equal("ok", (await pair.Stub.SayAsync(new EchoRequest { Text = "ok" })).Text);
    }

    [Fact]
    public async Task A_deadline_ends_the_call_on_both_sides()
    {
        await using var pair = await EchoPair.StartAsync();
        var watch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            pair.Stub.SayAsync(new EchoRequest { DelayMs = 60_000 }, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        Assert.True(await pair.Service.CancelledCall.Task.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Cancelling_a_call_fails_it_with_cancelled()
    {
        await using var pair = await EchoPair.StartAsync();
        using var cts = new CancellationTokenSource(100);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            pair.Stub.SayAsync(new EchoRequest { DelayMs = 60_000 }, cancellationToken: cts.Token).ResponseAsync);
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
    }

    [Fact]
    public async Task When_the_server_goes_away_pending_and_later_calls_fail_at_once()
    {
        await using var pair = await EchoPair.StartAsync();
        var pending = pair.Stub.SayAsync(new EchoRequest { DelayMs = 60_000 }).ResponseAsync;
        await Task.Delay(100);
        pair.ServerEnd.Dispose();
        var e = await Assert.ThrowsAsync<RpcException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        await pair.Client.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        var later = await Assert.ThrowsAsync<RpcException>(() => pair.Stub.SayAsync(new EchoRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.Unavailable, later.StatusCode);
    }

    [Fact]
    public async Task Disposing_a_client_twice_or_concurrently_closes_it_once()
    {
        await using var pair = await EchoPair.StartAsync();
        Assert.Equal("x", (await pair.Stub.SayAsync(new EchoRequest { Text = "x" })).Text);
        await Task.WhenAll(pair.Client.DisposeAsync().AsTask(), pair.Client.DisposeAsync().AsTask());
        await pair.Client.DisposeAsync();
        Assert.True(pair.Client.IsClosed);
        var e = await Assert.ThrowsAsync<RpcException>(() => pair.Stub.SayAsync(new EchoRequest()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public async Task Streaming_methods_answer_unimplemented()
    {
        await using var pair = await EchoPair.StartAsync();
        var e = Assert.Throws<RpcException>(() => pair.Stub.Stream(new EchoRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Contains("/hull.test.ttrpc.Echo/Stream", e.Status.Detail);
    }
}
